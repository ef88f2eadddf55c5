/**
 * Checks on values decoded from the chain. Chain data is untrusted: a value of the wrong type or out of range
 * is a `CHAIN_BAD_DATA` error naming the field, never a silent truncation.
 */
import { WcpError } from '../internal/errors.ts';

/** Longest string field accepted from a contract (queue names, activity types, refs, reasons). */
const MAX_CHAIN_TEXT = 4096;

/** A string field of at most `MAX_CHAIN_TEXT` chars. */
export function chainText(field: string, value: unknown): string {
  if (typeof value !== 'string') throw new WcpError('CHAIN_BAD_DATA', `chain returned a non-string ${field}`);
  if (value.length > MAX_CHAIN_TEXT)
    throw new WcpError('CHAIN_BAD_DATA', `chain returned a ${field} of ${value.length} chars (max ${MAX_CHAIN_TEXT})`);
  return value;
}

/** An unsigned integer field that fits a JS number exactly. */
export function chainUint(field: string, value: unknown): number {
  const n = BigInt(value as bigint);
  if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER))
    throw new WcpError('CHAIN_BAD_DATA', `chain returned ${field}=${n}, out of range`);
  return Number(n);
}
