/**
 * A real headless Chromium for tests: `@sparticuz/chromium` ships the binary inside its npm package (unpacked to
 * the temp dir on first use, nothing downloaded), driven by `puppeteer-core` (the release matching its major). A
 * machine where it cannot start fails the test with the reason: it is never skipped.
 */
import chromium from '@sparticuz/chromium';
import puppeteer, { type Browser } from 'puppeteer-core';

export async function launchChromium(): Promise<Browser> {
  let executablePath: string;
  try {
    executablePath = await chromium.executablePath();
  } catch (e) {
    throw new Error(`@sparticuz/chromium could not unpack its Chromium: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return await puppeteer.launch({ executablePath, args: chromium.args, headless: true });
  } catch (e) {
    throw new Error(
      `headless Chromium (${executablePath}) could not start: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}
