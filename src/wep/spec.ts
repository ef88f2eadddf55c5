/**
 * Activity specs: one YAML file per activity type, bound to valibot schemas that the executor SDK uses to check a
 * task's input before its handler runs and the handler's outputs after.
 *
 * Format (every key but `name`, `version` and `outputs` is optional):
 *
 *   name: video.preprocess          # activity type, [A-Za-z0-9][A-Za-z0-9._-]*
 *   version: 1.0.0
 *   description: Transcode and thumbnail a video.
 *   timeout_seconds: 1800           # handler deadline (the task's own deadline still applies)
 *   inputs:
 *     video:  { type: blob, description: Source video }            # blob = a "blob:<ns>/<key>" reference
 *     width:  { type: integer, default: 1280, minimum: 16, maximum: 7680 }
 *     fps:    { type: number, default: 30, minimum: 1, maximum: 240 }
 *     preset: { type: string, enum: [fast, slow], required: false }
 *   outputs:
 *     video:  { key: video.mp4, content_type: video/mp4 }          # stored at blob:<activity_id>/video.mp4
 *
 * Input fields: `type` (string | integer | number | boolean | blob), `description`, `required` (default: true
 * unless a `default` is given), `default`, `minimum` / `maximum` (numbers), `min_length` / `max_length` /
 * `pattern` / `enum` (strings). Unknown input fields are refused. Outputs: `key`, `content_type`, `description`,
 * `required` (default true). A bad spec throws `ACTIVITY_SPEC_INVALID` naming the file and the field path.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as v from 'valibot';
import { parse as parseYaml } from 'yaml';
import type { ExecutorMessageWire } from '../taskstream/protocol.ts';
import { keyProblem, parseBlobRef } from '../taskstream/refs.ts';
import { ACTIVITY_TYPE_RE } from '../taskstream/validate.ts';
import { WcpError } from '../internal/errors.ts';

export type FieldType = 'string' | 'integer' | 'number' | 'boolean' | 'blob';

export interface FieldSpec {
  type: FieldType;
  description: string;
  required: boolean;
  default?: string | number | boolean;
  minimum?: number;
  maximum?: number;
  min_length?: number;
  max_length?: number;
  pattern?: string;
  enum?: Array<string | number>;
}

export interface OutputSpec {
  key: string;
  contentType: string;
  description: string;
  required: boolean;
}

export interface ActivitySpec {
  name: string;
  version: string;
  description: string;
  timeoutSeconds: number | undefined;
  inputs: Record<string, FieldSpec>;
  outputs: Record<string, OutputSpec>;
  /** Checks a task's input and applies defaults. */
  inputSchema: v.GenericSchema<unknown, Record<string, unknown>>;
  /** Checks a handler's result: output name → blob reference. */
  outputSchema: v.GenericSchema<unknown, Record<string, string>>;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const OUTPUT_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

const fieldDoc = v.strictObject({
  type: v.picklist(
    ['string', 'integer', 'number', 'boolean', 'blob'],
    'must be one of string, integer, number, boolean, blob',
  ),
  description: v.optional(v.string(), ''),
  required: v.optional(v.boolean()),
  default: v.optional(v.union([v.string(), v.number(), v.boolean()], 'must be a string, number or boolean')),
  minimum: v.optional(v.pipe(v.number(), v.finite())),
  maximum: v.optional(v.pipe(v.number(), v.finite())),
  min_length: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  max_length: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  pattern: v.optional(v.string()),
  enum: v.optional(v.pipe(v.array(v.union([v.string(), v.number()])), v.minLength(1, 'must not be empty'))),
});

const outputDoc = v.strictObject({
  key: v.pipe(
    v.string(),
    v.check((k) => keyProblem(k) === null, 'must be a relative object key of [A-Za-z0-9._-] segments'),
  ),
  content_type: v.optional(v.string(), 'application/octet-stream'),
  description: v.optional(v.string(), ''),
  required: v.optional(v.boolean(), true),
});

const specDoc = v.strictObject({
  name: v.pipe(v.string('is required'), v.regex(ACTIVITY_TYPE_RE, 'must match [A-Za-z0-9][A-Za-z0-9._-]*')),
  version: v.pipe(v.union([v.string(), v.number()], 'is required'), v.transform(String)),
  description: v.optional(v.string(), ''),
  timeout_seconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  inputs: v.optional(
    v.nullable(v.record(v.pipe(v.string(), v.regex(NAME_RE, 'is not a valid input name')), fieldDoc)),
    {},
  ),
  /** `reject` (default): an input key the spec does not declare fails validation. `ignore`: it is dropped (for
   * workflow steps fed the previous step's whole result). */
  extra_inputs: v.optional(v.picklist(['reject', 'ignore'], 'must be reject or ignore'), 'reject'),
  outputs: v.record(
    v.pipe(v.string(), v.regex(OUTPUT_NAME_RE, 'is not a valid output name')),
    outputDoc,
    'is required',
  ),
});

function specError(source: string, path: string, message: string): WcpError {
  return new WcpError('ACTIVITY_SPEC_INVALID', `Activity spec ${source}: ${path ? `${path}: ` : ''}${message}`, {
    details: [`field: ${path || '(document)'}`],
  });
}

function fieldSchema(name: string, f: FieldSpec, source: string): v.GenericSchema {
  const path = `inputs.${name}`;
  const base = (): v.GenericSchema => {
    switch (f.type) {
      case 'boolean':
        return v.boolean();
      case 'blob':
        return v.pipe(
          v.string(),
          v.check((s) => parseBlobRef(s) !== null, 'must be a blob reference (blob:<namespace>/<key>)'),
        );
      case 'integer':
      case 'number': {
        const items: v.PipeItem<number, number, v.BaseIssue<unknown>>[] = [v.finite()];
        if (f.type === 'integer') items.push(v.integer());
        if (f.minimum !== undefined) items.push(v.minValue(f.minimum));
        if (f.maximum !== undefined) items.push(v.maxValue(f.maximum));
        if (f.enum !== undefined) {
          const allowed = f.enum;
          items.push(v.check((n) => allowed.includes(n), `must be one of ${allowed.join(', ')}`));
        }
        return v.pipe(v.number(), ...items);
      }
      case 'string': {
        const items: v.PipeItem<string, string, v.BaseIssue<unknown>>[] = [];
        if (f.min_length !== undefined) items.push(v.minLength(f.min_length));
        if (f.max_length !== undefined) items.push(v.maxLength(f.max_length));
        if (f.pattern !== undefined) {
          let re: RegExp;
          try {
            re = new RegExp(f.pattern);
          } catch (e) {
            throw specError(source, `${path}.pattern`, `is not a valid regular expression (${(e as Error).message})`);
          }
          items.push(v.regex(re));
        }
        if (f.enum !== undefined) {
          const allowed = f.enum;
          items.push(v.check((s) => allowed.includes(s), `must be one of ${allowed.join(', ')}`));
        }
        return items.length === 0 ? v.string() : v.pipe(v.string(), ...items);
      }
    }
  };
  const schema = base();
  if (f.type !== 'integer' && f.type !== 'number' && (f.minimum !== undefined || f.maximum !== undefined)) {
    throw specError(source, `${path}.minimum`, `only applies to integer and number fields, not ${f.type}`);
  }
  if (f.type !== 'string' && (f.min_length !== undefined || f.max_length !== undefined || f.pattern !== undefined)) {
    throw specError(
      source,
      `${path}.max_length`,
      `length and pattern constraints only apply to string fields, not ${f.type}`,
    );
  }
  if (f.minimum !== undefined && f.maximum !== undefined && f.minimum > f.maximum) {
    throw specError(source, `${path}.minimum`, `is greater than maximum (${f.minimum} > ${f.maximum})`);
  }
  if (f.default !== undefined) {
    const r = v.safeParse(schema, f.default);
    if (!r.success)
      throw specError(
        source,
        `${path}.default`,
        `${JSON.stringify(f.default)} is not a valid ${f.type}: ${r.issues[0]?.message}`,
      );
    return v.optional(schema, f.default);
  }
  return f.required ? schema : v.optional(schema);
}

/** Parses one spec from YAML text. `source` names it in errors (a file name). */
export function parseActivitySpec(yamlText: string, source = 'spec'): ActivitySpec {
  let doc: unknown;
  try {
    doc = parseYaml(yamlText);
  } catch (e) {
    throw specError(source, '', `is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw specError(source, '', 'must be a YAML mapping');
  const r = v.safeParse(specDoc, doc);
  if (!r.success) {
    const issue = r.issues[0];
    const path = issue ? (v.getDotPath(issue) ?? '') : '';
    const got = issue?.input === undefined ? 'nothing' : JSON.stringify(issue.input)?.slice(0, 60);
    if (issue?.input === undefined) throw specError(source, path, 'is required');
    throw specError(source, path, `${issue.message} (got ${got})`);
  }
  const d = r.output;
  const inputs: Record<string, FieldSpec> = {};
  const entries: Record<string, v.GenericSchema> = {};
  for (const [name, f] of Object.entries(d.inputs ?? {})) {
    const spec: FieldSpec = {
      type: f.type,
      description: f.description,
      required: f.required ?? f.default === undefined,
      ...(f.default !== undefined ? { default: f.default } : {}),
      ...(f.minimum !== undefined ? { minimum: f.minimum } : {}),
      ...(f.maximum !== undefined ? { maximum: f.maximum } : {}),
      ...(f.min_length !== undefined ? { min_length: f.min_length } : {}),
      ...(f.max_length !== undefined ? { max_length: f.max_length } : {}),
      ...(f.pattern !== undefined ? { pattern: f.pattern } : {}),
      ...(f.enum !== undefined ? { enum: f.enum } : {}),
    };
    inputs[name] = spec;
    entries[name] = fieldSchema(name, spec, source);
  }
  const outputs: Record<string, OutputSpec> = {};
  const outEntries: Record<string, v.GenericSchema> = {};
  const keys = new Set<string>();
  for (const [name, o] of Object.entries(d.outputs)) {
    if (keys.has(o.key)) throw specError(source, `outputs.${name}.key`, `"${o.key}" is used by another output`);
    keys.add(o.key);
    outputs[name] = { key: o.key, contentType: o.content_type, description: o.description, required: o.required };
    const ref = v.pipe(
      v.string(),
      v.check((s) => parseBlobRef(s) !== null, 'must be a blob reference (blob:<namespace>/<key>)'),
    );
    outEntries[name] = o.required ? ref : v.optional(ref);
  }
  if (Object.keys(outputs).length === 0) throw specError(source, 'outputs', 'must declare at least one output');
  return {
    name: d.name,
    version: d.version,
    description: d.description,
    timeoutSeconds: d.timeout_seconds,
    inputs,
    outputs,
    inputSchema: (d.extra_inputs === 'ignore'
      ? v.object(entries)
      : v.strictObject(entries)) as unknown as v.GenericSchema<unknown, Record<string, unknown>>,
    outputSchema: v.strictObject(outEntries) as unknown as v.GenericSchema<unknown, Record<string, string>>,
  };
}

/** Loads every `*.yaml` / `*.yml` in `dir`, keyed by activity type. Duplicate names are an error. */
export async function loadActivitySpecs(dir: string): Promise<Map<string, ActivitySpec>> {
  const names = (await readdir(dir)).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  const out = new Map<string, ActivitySpec>();
  for (const f of names) {
    const spec = parseActivitySpec(await readFile(join(dir, f), 'utf8'), f);
    if (out.has(spec.name)) throw specError(f, 'name', `"${spec.name}" is already defined by another spec in ${dir}`);
    out.set(spec.name, spec);
  }
  return out;
}

/** Declared outputs in the bridge's shape (for `ExecutorBridgeOptions.outputSpecs` and Capabilities). */
export function outputDecls(
  spec: ActivitySpec,
): Array<{ name: string; key: string; contentType: string; required: boolean }> {
  return Object.entries(spec.outputs).map(([name, o]) => ({
    name,
    key: o.key,
    contentType: o.contentType,
    required: o.required,
  }));
}

/** The Capabilities message body an executor with these specs and this concurrency announces. */
export function capabilitiesOf(
  specs: ReadonlyMap<string, ActivitySpec>,
  concurrency: number,
): Extract<ExecutorMessageWire, { capabilities: unknown }>['capabilities'] {
  return {
    activity_types: [...specs.keys()],
    max_concurrency: concurrency,
    outputs: [...specs.values()].map((sp) => ({
      activity_type: sp.name,
      outputs: outputDecls(sp).map((o) => ({
        name: o.name,
        key: o.key,
        content_type: o.contentType,
        optional: !o.required,
      })),
    })),
  };
}

/** Formats the first valibot issue as `path: message`. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${v.getDotPath(i) ?? '(input)'}: ${i.message}`)
    .join('; ');
}
