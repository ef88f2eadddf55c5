/**
 * Running ffmpeg and ffprobe as child processes: locating the binaries, cancellation through an AbortSignal
 * (the child is killed and reaped before the promise settles), errors carrying the tail of stderr, ffmpeg's
 * `-progress pipe:1` output, and ffprobe's JSON turned into a small metadata record.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { MediaError } from './media-error.ts';

/**
 * Path of the ffmpeg binary: `FFMPEG_PATH`, else the one from npm `@ffmpeg-installer/linux-x64` when present,
 * else `ffmpeg` from PATH.
 */
export function resolveFfmpegPath(): string {
  return fromEnvOrPackage('FFMPEG_PATH', '@ffmpeg-installer/linux-x64', 'ffmpeg');
}

/**
 * Path of the ffprobe binary: `FFPROBE_PATH`, else the one from npm `@ffprobe-installer/linux-x64` when present,
 * else `ffprobe` from PATH.
 */
export function resolveFfprobePath(): string {
  return fromEnvOrPackage('FFPROBE_PATH', '@ffprobe-installer/linux-x64', 'ffprobe');
}

function fromEnvOrPackage(envName: string, pkg: string, bin: string): string {
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  try {
    // Inside a compiled binary the package is absent (or resolves to a build-machine path): fall through.
    const p = join(dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`)), bin);
    if (existsSync(p)) return p;
  } catch {
    /* not installed */
  }
  return bin;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Called with each complete stdout line (then stdout is not collected). */
  onStdoutLine?: (line: string) => void;
  /** Error code when the tool exits non-zero (default MEDIA_FAILED). */
  failureCode?: 'MEDIA_FAILED' | 'MEDIA_INVALID_INPUT';
  /** What the run is, for error messages ("transcode", "probe input" …). */
  what: string;
}

const STDERR_TAIL_BYTES = 8192;
const STDERR_TAIL_LINES = 12;

/**
 * Runs `bin args…` with no stdin. Resolves with stdout (unless streamed to `onStdoutLine`). Rejects with
 * MediaError: MEDIA_ABORTED when the signal fires (after the child is gone), MEDIA_FAILED (or `failureCode`) on a
 * non-zero exit with the last lines of stderr in the message, MEDIA_FAILED when the binary cannot be started.
 */
export function runTool(bin: string, args: string[], opts: RunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new MediaError('MEDIA_ABORTED', `Video ${opts.what} cancelled before it started`));
      return;
    }
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let partial = '';
    let stderr = '';
    let aborted = false;
    let spawnError: Error | undefined;

    const onAbort = (): void => {
      aborted = true;
      child.kill('SIGKILL');
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (!opts.onStdoutLine) {
        stdout += chunk;
        return;
      }
      partial += chunk;
      let nl = partial.indexOf('\n');
      while (nl >= 0) {
        opts.onStdoutLine(partial.slice(0, nl).trimEnd());
        partial = partial.slice(nl + 1);
        nl = partial.indexOf('\n');
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.length > 2 * STDERR_TAIL_BYTES) stderr = stderr.slice(-STDERR_TAIL_BYTES);
    });
    child.on('error', (e) => {
      spawnError = e;
    });
    // 'close' comes after the process exited and its pipes drained: the child is really gone here.
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (aborted) {
        reject(new MediaError('MEDIA_ABORTED', `Video ${opts.what} cancelled; ffmpeg was stopped`));
        return;
      }
      if (spawnError) {
        const notFound = (spawnError as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          new MediaError(
            'MEDIA_FAILED',
            notFound
              ? `Cannot run ${bin}: not found (set FFMPEG_PATH / FFPROBE_PATH)`
              : `Cannot run ${bin}: ${spawnError.message}`,
            {
              cause: spawnError,
            },
          ),
        );
        return;
      }
      if (code === 0) {
        if (partial && opts.onStdoutLine) opts.onStdoutLine(partial.trimEnd());
        resolve(stdout);
        return;
      }
      const tail = stderrTail(stderr);
      const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
      reject(
        new MediaError(
          opts.failureCode ?? 'MEDIA_FAILED',
          `Video ${opts.what} failed: ${bin.split('/').pop()} ${how}${tail.length ? `: ${tail.at(-1)}` : ''}`,
          {
            details: tail,
          },
        ),
      );
    });
  });
}

/** Last meaningful lines of a tool's stderr. */
function stderrTail(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-STDERR_TAIL_LINES)
    .map((l) => l.slice(0, 300));
}

/**
 * Parser of ffmpeg's `-progress pipe:1` output (blocks of `key=value` lines, each ending with `progress=…`).
 * Calls `onTime(seconds, done)` once per block with the output position.
 */
export function createProgressParser(onTime: (outTimeS: number, done: boolean) => void): (line: string) => void {
  let outTimeUs: number | undefined;
  return (line) => {
    const eq = line.indexOf('=');
    if (eq < 0) return;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === 'out_time_us' || key === 'out_time_ms') {
      // Both are microseconds (out_time_ms is misnamed in ffmpeg); "N/A" before the first frame.
      const n = Number(value);
      if (Number.isFinite(n) && n >= 0) outTimeUs = n;
    } else if (key === 'out_time' && outTimeUs === undefined) {
      const m = /^(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(value);
      if (m) outTimeUs = (Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1e6;
    } else if (key === 'progress') {
      onTime((outTimeUs ?? 0) / 1e6, value === 'end');
      outTimeUs = undefined;
    }
  };
}

/** Metadata of a media file, from ffprobe. */
export interface VideoMetadata {
  /** Container duration in seconds. */
  durationS: number;
  width: number;
  height: number;
  /** Frame rate of the first video stream (from r_frame_rate, e.g. 15 for "15/1"). */
  fps: number;
  /** Codec of the first video stream, ffprobe's name (e.g. `h264`). */
  codec: string;
  /** Pixel format of the first video stream (e.g. `yuv420p`). */
  pixelFormat: string;
  /** Codec of the first audio stream, or null when there is none. */
  audioCodec: string | null;
  /** Number of video frames when the container says, else null. */
  frames: number | null;
  sizeBytes: number | null;
  bitRateBps: number | null;
  /** ffprobe's format name (e.g. `mov,mp4,m4a,3gp,3g2,mj2`). */
  container: string;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
}
interface ProbeJson {
  streams?: ProbeStream[];
  format?: { duration?: string; size?: string; bit_rate?: string; format_name?: string };
}

function rate(text: string | undefined): number {
  const m = /^(\d+)\/(\d+)$/.exec(text ?? '');
  if (!m || Number(m[2]) === 0) return 0;
  return Number(m[1]) / Number(m[2]);
}

function num(text: string | undefined): number | null {
  if (text === undefined) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/**
 * Runs ffprobe on `path`; resolves with ffprobe's JSON text and the parsed metadata. A file ffprobe cannot read,
 * or one without a video stream, is MEDIA_INVALID_INPUT.
 */
export async function probeVideo(
  path: string,
  opts: { signal?: AbortSignal; ffprobePath?: string } = {},
): Promise<{ json: string; metadata: VideoMetadata }> {
  const args = ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path];
  const runOpts: RunOptions = { what: 'probe', failureCode: 'MEDIA_INVALID_INPUT' };
  if (opts.signal) runOpts.signal = opts.signal;
  const json = await runTool(opts.ffprobePath ?? resolveFfprobePath(), args, runOpts);
  let parsed: ProbeJson;
  try {
    parsed = JSON.parse(json) as ProbeJson;
  } catch {
    throw new MediaError('MEDIA_FAILED', 'ffprobe printed something that is not JSON');
  }
  const streams = parsed.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video');
  if (!video?.width || !video.height) {
    throw new MediaError('MEDIA_INVALID_INPUT', `No video stream in ${path}`);
  }
  const audio = streams.find((s) => s.codec_type === 'audio');
  const durationS = num(parsed.format?.duration) ?? num(video.duration) ?? 0;
  return {
    json,
    metadata: {
      durationS,
      width: video.width,
      height: video.height,
      fps: rate(video.r_frame_rate) || rate(video.avg_frame_rate),
      codec: video.codec_name ?? 'unknown',
      pixelFormat: video.pix_fmt ?? 'unknown',
      audioCodec: audio?.codec_name ?? null,
      frames: num(video.nb_frames),
      sizeBytes: num(parsed.format?.size),
      bitRateBps: num(parsed.format?.bit_rate),
      container: parsed.format?.format_name ?? 'unknown',
    },
  };
}
