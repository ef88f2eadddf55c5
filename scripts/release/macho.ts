/**
 * Checks a thin 64-bit Mach-O executable's code signature without macOS: every CodeDirectory's page hashes are
 * recomputed over the file and compared, and the signed range must end where the signature starts. This is the
 * check that tells a valid ad-hoc signature from one Bun copied over pages it then changed (darwin-x64, Bun
 * 1.4.5). Special slots (entitlements, requirements) are not checked; `codesign --verify` on a macOS runner is the
 * full check (.github/workflows/release.yml).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const MH_MAGIC_64 = 0xfeedfacf;
const LC_CODE_SIGNATURE = 0x1d;
const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY = 0xfade0c02;
const HASHES: Record<number, string> = { 1: 'sha1', 2: 'sha256' };

/** Outcome of `verifyMachOSignature`: ok, or the first thing found wrong. */
export type SignatureCheck = { ok: true; pages: number } | { ok: false; reason: string };

/** Verifies the code signature of the Mach-O file at `path` (see the module comment for what is checked). */
export function verifyMachOSignature(path: string): SignatureCheck {
  const f = readFileSync(path);
  if (f.length < 32 || f.readUInt32LE(0) !== MH_MAGIC_64) return { ok: false, reason: 'not a thin 64-bit Mach-O file' };
  const ncmds = f.readUInt32LE(16);
  let at = 32;
  let sig: { off: number; size: number } | undefined;
  for (let i = 0; i < ncmds; i++) {
    const cmd = f.readUInt32LE(at);
    if (cmd === LC_CODE_SIGNATURE) sig = { off: f.readUInt32LE(at + 8), size: f.readUInt32LE(at + 12) };
    at += f.readUInt32LE(at + 4);
  }
  if (sig === undefined) return { ok: false, reason: 'no LC_CODE_SIGNATURE' };
  if (f.readUInt32BE(sig.off) !== CSMAGIC_EMBEDDED_SIGNATURE)
    return { ok: false, reason: 'no embedded signature SuperBlob' };
  const count = f.readUInt32BE(sig.off + 8);
  let pages = 0;
  let directories = 0;
  for (let i = 0; i < count; i++) {
    const cd = sig.off + f.readUInt32BE(sig.off + 12 + i * 8 + 4);
    if (f.readUInt32BE(cd) !== CSMAGIC_CODEDIRECTORY) continue;
    directories++;
    const hashOffset = f.readUInt32BE(cd + 16);
    const nCodeSlots = f.readUInt32BE(cd + 28);
    const codeLimit = f.readUInt32BE(cd + 32);
    const hashSize = f.readUInt8(cd + 36);
    const algorithm = HASHES[f.readUInt8(cd + 37)];
    const pageSize = 2 ** f.readUInt8(cd + 39);
    if (algorithm === undefined) return { ok: false, reason: `unknown hash type ${f.readUInt8(cd + 37)}` };
    if (codeLimit !== sig.off)
      return { ok: false, reason: `signed range ends at ${codeLimit}, the signature starts at ${sig.off}` };
    if (nCodeSlots !== Math.ceil(codeLimit / pageSize))
      return { ok: false, reason: `${nCodeSlots} page hashes for ${codeLimit} bytes` };
    for (let p = 0; p < nCodeSlots; p++) {
      const page = f.subarray(p * pageSize, Math.min((p + 1) * pageSize, codeLimit));
      const want = f.subarray(cd + hashOffset + p * hashSize, cd + hashOffset + (p + 1) * hashSize);
      const got = createHash(algorithm).update(page).digest().subarray(0, hashSize);
      if (!got.equals(want))
        return { ok: false, reason: `page ${p} (offset ${p * pageSize}) does not match its ${algorithm} hash` };
    }
    pages += nCodeSlots;
  }
  return directories === 0 ? { ok: false, reason: 'no CodeDirectory' } : { ok: true, pages };
}
