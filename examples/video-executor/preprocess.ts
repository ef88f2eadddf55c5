/**
 * The media pipeline of the `video.preprocess` activity, as a plain function with no RPC in sight:
 * normalize a video with ffmpeg (scale, fixed fps, H.264 yuv420p, AAC or no audio, MP4 with faststart), take a
 * thumbnail, and write ffprobe's JSON of the result. Also `generateTestVideo` for tests and dev.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaError } from './media-error.ts';
import {
  createProgressParser,
  probeVideo,
  resolveFfmpegPath,
  runTool,
  type RunOptions,
  type VideoMetadata,
} from './ffmpeg.ts';

export type { VideoMetadata } from './ffmpeg.ts';
export { probeVideo, resolveFfmpegPath, resolveFfprobePath } from './ffmpeg.ts';

export interface PreprocessOptions {
  /** The source video (any format ffmpeg reads). */
  inputPath: string;
  /** Where outputs go (created if missing): `video.mp4`, `thumbnail.jpg` (or `.png`), `probe.json`. */
  outDir: string;
  /**
   * Target frame size in pixels, even numbers. Both given: the picture is fit inside and padded (letterbox) to
   * exactly width×height. One given: the other follows the aspect ratio (rounded to even). None: source size,
   * rounded down to even.
   */
  width?: number;
  height?: number;
  /** Output frame rate (default 30); frames are dropped or duplicated to hold it. */
  fps?: number;
  /** Keep the first audio stream as AAC stereo 48 kHz (default true); inputs without audio give none. */
  audio?: boolean;
  /** Thumbnail position in seconds (default: 10% into the video, at most 10 s). */
  thumbnailAtS?: number;
  /** Thumbnail format (default `jpg`). */
  thumbnailFormat?: 'jpg' | 'png';
  /** Progress from 0 to 1, non-decreasing; 1 once everything is written. */
  onProgress?: (fraction: number) => void;
  /** Cancels: ffmpeg is killed, partial outputs are removed, the promise rejects with MEDIA_ABORTED. */
  signal?: AbortSignal;
  /** Override of the binaries (default: see `resolveFfmpegPath` / `resolveFfprobePath`). */
  ffmpegPath?: string;
  ffprobePath?: string;
}

export interface PreprocessResult {
  /** Absolute or outDir-relative paths of the three outputs, all present when this resolves. */
  outputs: { video: string; thumbnail: string; probe: string };
  /** Metadata of the output video (from ffprobe), plus the thumbnail's position. */
  metadata: VideoMetadata & { thumbnailAtS: number; sourceDurationS: number };
}

/** Share of the progress bar the transcode takes; thumbnail and probe take the rest. */
const TRANSCODE_SHARE = 0.9;

function invalid(message: string): MediaError {
  return new MediaError('MEDIA_INVALID_INPUT', message);
}

function checkDim(name: string, v: number | undefined): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < 2 || v > 8192 || v % 2 !== 0) {
    throw invalid(`${name} must be an even integer in 2..8192, got ${v}`);
  }
}

/** The -vf chain: scale (+ pad when both sides are fixed), square pixels, fixed rate, yuv420p. */
function videoFilter(width: number | undefined, height: number | undefined, fps: number): string {
  let scale: string;
  if (width !== undefined && height !== undefined) {
    scale = `scale=${width}:${height}:force_original_aspect_ratio=decrease,pad=${width}:${height}:(ow-iw)/2:(oh-ih)/2:color=black`;
  } else if (width !== undefined) {
    scale = `scale=${width}:-2`;
  } else if (height !== undefined) {
    scale = `scale=-2:${height}`;
  } else {
    scale = 'scale=trunc(iw/2)*2:trunc(ih/2)*2';
  }
  return `${scale},setsar=1,fps=${fps},format=yuv420p`;
}

/**
 * Normalizes `inputPath` into `outDir` and describes the result. Outputs are written under temporary names and
 * renamed when complete; on failure or cancellation nothing of this run is left in `outDir`.
 * Rejects with MediaError: MEDIA_INVALID_INPUT (missing/unreadable input, no video stream, bad options),
 * MEDIA_FAILED (ffmpeg/ffprobe failed; message and details carry stderr's tail), MEDIA_ABORTED (signal).
 */
export async function preprocessVideo(opts: PreprocessOptions): Promise<PreprocessResult> {
  const fps = opts.fps ?? 30;
  checkDim('width', opts.width);
  checkDim('height', opts.height);
  if (!(fps > 0 && fps <= 240)) throw invalid(`fps must be in (0, 240], got ${fps}`);
  if (opts.thumbnailAtS !== undefined && !(opts.thumbnailAtS >= 0))
    throw invalid(`thumbnailAtS must be >= 0, got ${opts.thumbnailAtS}`);
  try {
    if (!(await stat(opts.inputPath)).isFile()) throw invalid(`Input ${opts.inputPath} is not a file`);
  } catch (e) {
    if (e instanceof MediaError) throw e;
    throw invalid(`Input ${opts.inputPath} does not exist or cannot be read`);
  }
  const ffmpeg = opts.ffmpegPath ?? resolveFfmpegPath();
  const probeOpts: { signal?: AbortSignal; ffprobePath?: string } = {};
  if (opts.signal) probeOpts.signal = opts.signal;
  if (opts.ffprobePath) probeOpts.ffprobePath = opts.ffprobePath;
  const run = (args: string[], what: string, onStdoutLine?: (l: string) => void): Promise<string> => {
    const o: RunOptions = { what };
    if (opts.signal) o.signal = opts.signal;
    if (onStdoutLine) o.onStdoutLine = onStdoutLine;
    return runTool(ffmpeg, ['-hide_banner', '-nostdin', '-y', ...args], o);
  };

  let reported = -1;
  const report = (f: number): void => {
    const v = Math.min(1, Math.max(0, f));
    if (v <= reported) return;
    reported = v;
    opts.onProgress?.(v);
  };

  const source = (await probeVideo(opts.inputPath, probeOpts)).metadata;
  report(0);

  await mkdir(opts.outDir, { recursive: true });
  const thumbExt = opts.thumbnailFormat ?? 'jpg';
  const outputs = {
    video: join(opts.outDir, 'video.mp4'),
    thumbnail: join(opts.outDir, `thumbnail.${thumbExt}`),
    probe: join(opts.outDir, 'probe.json'),
  };
  const tag = randomUUID().slice(0, 8);
  const partial = (p: string): string => `${p}.${tag}.partial`;
  const written: string[] = [];

  try {
    // 1. Transcode.
    const audioArgs =
      opts.audio !== false && source.audioCodec !== null
        ? ['-map', '0:a:0', '-c:a', 'aac', '-b:a', '128k', '-ac', '2', '-ar', '48000']
        : ['-an'];
    const durationS = Math.max(source.durationS, 0);
    const onLine = createProgressParser((t, done) => {
      if (done) report(TRANSCODE_SHARE);
      else if (durationS > 0) report((Math.min(t, durationS) / durationS) * TRANSCODE_SHARE);
    });
    await run(
      [
        '-i',
        opts.inputPath,
        '-map',
        '0:v:0',
        '-vf',
        videoFilter(opts.width, opts.height, fps),
        '-c:v',
        'libx264',
        '-preset',
        'veryfast',
        '-crf',
        '23',
        '-pix_fmt',
        'yuv420p',
        ...audioArgs,
        '-sn',
        '-dn',
        '-map_metadata',
        '-1',
        '-movflags',
        '+faststart',
        '-progress',
        'pipe:1',
        '-nostats',
        '-f',
        'mp4',
        partial(outputs.video),
      ],
      'transcode',
      onLine,
    );
    written.push(partial(outputs.video));
    await rename(partial(outputs.video), outputs.video);
    written.push(outputs.video);
    report(TRANSCODE_SHARE);

    // 2. Describe the output (the thumbnail position depends on its duration).
    const probed = await probeVideo(outputs.video, probeOpts);
    const out = probed.metadata;

    // 3. Thumbnail, from the normalized output so it has the target size.
    const lastFrameS = Math.max(0, out.durationS - 1 / (out.fps || fps));
    const at = Math.min(opts.thumbnailAtS ?? Math.min(out.durationS * 0.1, 10), lastFrameS);
    const thumbArgs = thumbExt === 'jpg' ? ['-c:v', 'mjpeg', '-q:v', '3', '-pix_fmt', 'yuvj420p'] : ['-c:v', 'png'];
    written.push(partial(outputs.thumbnail));
    await run(
      [
        '-ss',
        at.toFixed(3),
        '-i',
        outputs.video,
        '-frames:v',
        '1',
        '-an',
        ...thumbArgs,
        '-f',
        'image2',
        partial(outputs.thumbnail),
      ],
      'thumbnail',
    );
    const thumbSize = await stat(partial(outputs.thumbnail)).then(
      (s) => s.size,
      () => 0,
    );
    if (thumbSize === 0)
      throw new MediaError('MEDIA_FAILED', `Video thumbnail failed: ffmpeg wrote no frame at ${at.toFixed(3)} s`);
    await rename(partial(outputs.thumbnail), outputs.thumbnail);
    written.push(outputs.thumbnail);
    report(0.95);

    // 4. Probe JSON beside the outputs.
    written.push(partial(outputs.probe));
    await writeFile(partial(outputs.probe), probed.json);
    await rename(partial(outputs.probe), outputs.probe);
    written.push(outputs.probe);
    report(1);

    return { outputs, metadata: { ...out, thumbnailAtS: at, sourceDurationS: source.durationS } };
  } catch (e) {
    // All or nothing: a later step must never pick up half of a run.
    await Promise.all([...written, partial(outputs.video)].map((p) => rm(p, { force: true })));
    throw e;
  }
}

export interface TestVideoOptions {
  seconds: number;
  width: number;
  height: number;
  /** Frame rate (default 25). */
  fps?: number;
  /** Add a 440 Hz sine track as AAC (default true). */
  audio?: boolean;
  signal?: AbortSignal;
  ffmpegPath?: string;
}

/**
 * Writes an H.264 MP4 test pattern (ffmpeg's lavfi `testsrc`, plus a sine tone unless `audio: false`) to `path`,
 * so tests and dev need no video fixture. Rejects with MEDIA_FAILED / MEDIA_ABORTED like `preprocessVideo`.
 */
export async function generateTestVideo(path: string, opts: TestVideoOptions): Promise<string> {
  const fps = opts.fps ?? 25;
  if (
    !(opts.seconds > 0) ||
    !Number.isInteger(opts.width) ||
    !Number.isInteger(opts.height) ||
    opts.width < 2 ||
    opts.height < 2
  ) {
    throw invalid(`generateTestVideo wants seconds > 0 and integer width/height >= 2, got ${JSON.stringify(opts)}`);
  }
  const audio = opts.audio !== false;
  const args = [
    '-hide_banner',
    '-nostdin',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=${opts.width}x${opts.height}:rate=${fps}:duration=${opts.seconds}`,
    ...(audio ? ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${opts.seconds}`] : []),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-pix_fmt',
    'yuv420p',
    ...(audio ? ['-c:a', 'aac', '-shortest'] : []),
    '-f',
    'mp4',
    path,
  ];
  const o: RunOptions = { what: 'test video generation' };
  if (opts.signal) o.signal = opts.signal;
  await runTool(opts.ffmpegPath ?? resolveFfmpegPath(), args, o);
  return path;
}
