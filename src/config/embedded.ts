/**
 * Config files embedded in the binary (text imports work under Bun, `bun build --compile`, Node and Deno).
 * `local` is the built-in default: `wcp run` on a dev box works with no file at all.
 */
import local from '../../configs/local.toml' with { type: 'text' };

export const EMBEDDED_CONFIGS: Readonly<Record<string, string>> = Object.freeze({ local });
