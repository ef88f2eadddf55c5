/**
 * The `video.preprocess` media pipeline with the real ffmpeg/ffprobe (npm @ffmpeg-installer / @ffprobe-installer,
 * or FFMPEG_PATH / FFPROBE_PATH) on videos the test generates itself.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMediaError, type MediaError } from '../examples/video-executor/media-error.ts';
import { createProgressParser } from '../examples/video-executor/ffmpeg.ts';
import { generateTestVideo, preprocessVideo, probeVideo } from '../examples/video-executor/preprocess.ts';

let dir: string;
let input: string;

async function expectMediaError(p: Promise<unknown>): Promise<MediaError> {
  try {
    await p;
  } catch (e) {
    if (isMediaError(e)) return e;
    throw e;
  }
  throw new Error('expected a MediaError, got success');
}

/** Pids of running processes whose command line mentions `needle` (read from /proc). */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (cmd.includes(needle) && state !== 'Z') pids.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wcp-video-'));
  input = await generateTestVideo(join(dir, 'input.mp4'), { seconds: 2, width: 320, height: 240 });
}, 120_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('preprocessVideo', () => {
  test('the generated input is what was asked for', async () => {
    const { metadata } = await probeVideo(input);
    expect(metadata.width).toBe(320);
    expect(metadata.height).toBe(240);
    expect(metadata.audioCodec).toBe('aac');
    expect(metadata.durationS).toBeGreaterThan(1.9);
    expect(metadata.durationS).toBeLessThan(2.2);
  });

  test('normalizes 320x240 to 160x120 @ 15 fps with thumbnail and probe', async () => {
    const outDir = join(dir, 'out-basic');
    const progress: number[] = [];
    const res = await preprocessVideo({
      inputPath: input,
      outDir,
      width: 160,
      height: 120,
      fps: 15,
      onProgress: (f) => progress.push(f),
    });

    for (const p of Object.values(res.outputs)) expect(statSync(p).size).toBeGreaterThan(0);
    expect(res.outputs.video).toBe(join(outDir, 'video.mp4'));
    expect(readdirSync(outDir).sort()).toEqual(['probe.json', 'thumbnail.jpg', 'video.mp4']);

    const m = res.metadata;
    expect(m.width).toBe(160);
    expect(m.height).toBe(120);
    expect(m.fps).toBe(15);
    expect(m.codec).toBe('h264');
    expect(m.pixelFormat).toBe('yuv420p');
    expect(m.audioCodec).toBe('aac');
    expect(m.durationS).toBeGreaterThan(1.8);
    expect(m.durationS).toBeLessThan(2.3);
    expect(m.sourceDurationS).toBeGreaterThan(1.9);

    // probe.json is ffprobe's own JSON and agrees with the metadata.
    const probe = JSON.parse(readFileSync(res.outputs.probe, 'utf8')) as {
      streams: { codec_type: string; width?: number; height?: number; r_frame_rate?: string }[];
    };
    const v = probe.streams.find((s) => s.codec_type === 'video');
    expect(v).toMatchObject({ width: 160, height: 120, r_frame_rate: '15/1' });

    // The thumbnail is a JPEG of the target size.
    const jpeg = readFileSync(res.outputs.thumbnail);
    expect(jpeg[0]).toBe(0xff);
    expect(jpeg[1]).toBe(0xd8);
    const thumb = await probeVideo(res.outputs.thumbnail);
    expect([thumb.metadata.width, thumb.metadata.height]).toEqual([160, 120]);

    // Progress: starts at 0, never goes back, ends at exactly 1.
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!).toBeGreaterThan(progress[i - 1]!);
  });

  test('letterboxes a different aspect ratio into the exact target size', async () => {
    const res = await preprocessVideo({
      inputPath: input,
      outDir: join(dir, 'out-wide'),
      width: 320,
      height: 180,
      fps: 10,
      thumbnailFormat: 'png',
    });
    expect([res.metadata.width, res.metadata.height, res.metadata.fps]).toEqual([320, 180, 10]);
    expect(res.outputs.thumbnail.endsWith('thumbnail.png')).toBe(true);
    expect(readFileSync(res.outputs.thumbnail).subarray(1, 4).toString()).toBe('PNG');
  });

  test('one side given keeps the aspect ratio; audio can be dropped', async () => {
    const res = await preprocessVideo({ inputPath: input, outDir: join(dir, 'out-w'), width: 200, audio: false });
    expect(res.metadata.width).toBe(200);
    expect(res.metadata.height).toBe(150);
    expect(res.metadata.fps).toBe(30);
    expect(res.metadata.audioCodec).toBeNull();
  });

  test('an input without audio gives an output without audio', async () => {
    const silent = await generateTestVideo(join(dir, 'silent.mp4'), {
      seconds: 1,
      width: 64,
      height: 48,
      audio: false,
    });
    const res = await preprocessVideo({ inputPath: silent, outDir: join(dir, 'out-silent') });
    expect(res.metadata.audioCodec).toBeNull();
    expect([res.metadata.width, res.metadata.height]).toEqual([64, 48]);
  });

  test('bad input and options are MEDIA_INVALID_INPUT', async () => {
    const missing = await expectMediaError(
      preprocessVideo({ inputPath: join(dir, 'nope.mp4'), outDir: join(dir, 'x') }),
    );
    expect(missing.code).toBe('MEDIA_INVALID_INPUT');

    const junk = join(dir, 'junk.mp4');
    writeFileSync(junk, 'this is not a video');
    const notVideo = await expectMediaError(preprocessVideo({ inputPath: junk, outDir: join(dir, 'out-junk') }));
    expect(notVideo.code).toBe('MEDIA_INVALID_INPUT');
    expect(notVideo.details.join('\n')).toContain('Invalid data');
    expect(existsSync(join(dir, 'out-junk'))).toBe(false);

    const odd = await expectMediaError(
      preprocessVideo({ inputPath: input, outDir: join(dir, 'x'), width: 161, height: 120 }),
    );
    expect(odd.code).toBe('MEDIA_INVALID_INPUT');
    expect(odd.message).toContain('even');
  });

  test('a failing ffmpeg gives MEDIA_FAILED with the stderr tail, and leaves no outputs', async () => {
    // A "ffmpeg" that fails the way ffmpeg does: message on stderr, non-zero exit.
    const fake = join(dir, 'failing-ffmpeg.sh');
    writeFileSync(fake, '#!/bin/sh\necho "line one" >&2\necho "Conversion failed! (simulated)" >&2\nexit 1\n', {
      mode: 0o755,
    });
    const outDir = join(dir, 'out-fail');
    const e = await expectMediaError(preprocessVideo({ inputPath: input, outDir, ffmpegPath: fake }));
    expect(e.code).toBe('MEDIA_FAILED');
    expect(e.message).toContain('exited with code 1');
    expect(e.message).toContain('Conversion failed! (simulated)');
    expect(e.details).toEqual(['line one', 'Conversion failed! (simulated)']);
    expect(readdirSync(outDir)).toEqual([]);

    const absent = await expectMediaError(
      preprocessVideo({ inputPath: input, outDir, ffmpegPath: join(dir, 'no-such-ffmpeg') }),
    );
    expect(absent.code).toBe('MEDIA_FAILED');
    expect(absent.message).toContain('not found');
  });

  test('abort mid-run kills ffmpeg, rejects with MEDIA_ABORTED and leaves nothing behind', async () => {
    // Long and upscaled enough that the transcode is still running when the first progress report arrives.
    const long = await generateTestVideo(join(dir, 'long.mp4'), { seconds: 20, width: 640, height: 360, fps: 30 });
    const outDir = join(dir, 'out-abort-unique');
    const ac = new AbortController();
    let sawFfmpeg: number[] = [];
    const started = preprocessVideo({
      inputPath: long,
      outDir,
      width: 1280,
      height: 720,
      fps: 30,
      signal: ac.signal,
      onProgress: (f) => {
        if (f > 0 && !ac.signal.aborted) {
          sawFfmpeg = processesMentioning(outDir);
          ac.abort();
        }
      },
    });
    const e = await expectMediaError(started);
    expect(e.code).toBe('MEDIA_ABORTED');
    expect(sawFfmpeg.length).toBe(1); // ffmpeg was running when we aborted …
    expect(processesMentioning(outDir)).toEqual([]); // … and is gone once the promise settled.
    expect(readdirSync(outDir)).toEqual([]);

    const pre = await expectMediaError(preprocessVideo({ inputPath: long, outDir, signal: AbortSignal.abort() }));
    expect(pre.code).toBe('MEDIA_ABORTED');
  }, 60_000);
});

describe('createProgressParser', () => {
  test('reads out_time_us, falls back to out_time, and flags the end', () => {
    const seen: [number, boolean][] = [];
    const feed = createProgressParser((t, done) => seen.push([t, done]));
    for (const l of ['frame=1', 'out_time_us=N/A', 'out_time=N/A', 'progress=continue']) feed(l);
    for (const l of ['out_time_us=1500000', 'out_time=00:00:01.500000', 'progress=continue']) feed(l);
    for (const l of ['out_time=00:01:02.250000', 'progress=end']) feed(l);
    expect(seen).toEqual([
      [0, false],
      [1.5, false],
      [62.25, true],
    ]);
  });
});
