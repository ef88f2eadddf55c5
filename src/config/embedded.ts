/**
 * Config files embedded in the binary (text imports work under Bun, `bun build --compile`, Node and Deno).
 * `local` is the built-in default: `wcp run` on a dev box works with no file at all. `EXAMPLE_CONFIG` is the
 * annotated config for a real network that `wcp config example` prints, so a release needs no repository.
 */
import example from '../../configs/example.toml' with { type: 'text' };
import local from '../../configs/local.toml' with { type: 'text' };

/** configs/example.toml, byte for byte. */
export const EXAMPLE_CONFIG: string = example;

export const EMBEDDED_CONFIGS: Readonly<Record<string, string>> = Object.freeze({ local });
