/**
 * The settle decisions as pure functions: no store, no tracker, no fakes. Writes are applied to a plain map, the
 * way `records.commit` applies them to the store.
 */
import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import type { InflightState } from '../store/records.ts';
import type { TxEvent } from '../txmgr/types.ts';
import type { ActivityEvents } from './calls.ts';
import type { Decision } from './effects.ts';
import { route, txEventTable } from './manager.ts';
import { decideSettle, type SettleEvent, type SettleFacts, wanted } from './settle.ts';
import { applied, held, recs, WALLET } from './testing/fixtures.ts';

const NOW_MS = 1_700_000_000_000;
const noEvents = (): ActivityEvents => ({
  claimed: new Map(),
  heartbeat: new Set(),
  completed: new Set(),
  failed: new Set(),
});
const facts = (events: ActivityEvents, extra: Partial<SettleFacts> = {}): SettleFacts => ({
  wallet: WALLET,
  nowMs: NOW_MS,
  events,
  inFlight: new Set(),
  ...extra,
});
const slot = (type: string, kind: string, ids: string[], extra: Record<string, unknown> = {}) =>
  ({
    type,
    kind,
    nonce: 5,
    activityIds: ids,
    hash: '0xh',
    blockNumber: 9,
    blockHash: '0xb',
    status: 'success',
    logs: [],
    gasUsed: 1n,
    ...extra,
  }) as unknown as SettleEvent;
const kinds = (d: Decision) => d.effects.map((e) => e.kind);

describe('settle decisions', () => {
  test('one filter: submitted, replaced, reverted mined and the mined of a complete, fail or resume are not wanted', () => {
    expect(wanted(slot('submitted', 'claim', ['1']) as unknown as TxEvent)).toBe(false);
    expect(wanted(slot('replaced', 'complete', ['1']) as unknown as TxEvent)).toBe(false);
    for (const kind of ['complete', 'fail', 'resume']) expect(wanted(slot('mined', kind, ['1']))).toBe(false);
    expect(wanted(slot('mined', 'claim', ['1'], { status: 'reverted' }))).toBe(false);
    expect(wanted(slot('mined', 'heartbeat', ['1']))).toBe(true);
    expect(wanted(slot('reorged', 'complete', ['1']))).toBe(false);
    expect(wanted(slot('confirmed', 'resume', ['1']))).toBe(true);
    expect(wanted(slot('failed', 'complete', ['1']))).toBe(true);
    expect(wanted({ type: 'fundsRestored', nonce: 1, address: WALLET })).toBe(false);
  });

  test("the manager's tx table hands wanted events to settle; the rest are dropped or only wake", async () => {
    const seen: string[] = [];
    const table = txEventTable(async (ev) => {
      seen.push(`${ev.type}:${ev.kind}`);
    });
    expect(route(table, slot('submitted', 'claim', ['1']) as unknown as TxEvent)).toBeNull();
    expect(route(table, slot('mined', 'complete', ['1']))).toBeNull();
    await route(table, slot('mined', 'heartbeat', ['1']));
    await route(table, slot('confirmed', 'resume', ['1']));
    await route(table, { type: 'fundsRestored', nonce: 1, address: WALLET });
    expect(seen).toEqual(['mined:heartbeat', 'confirmed:resume']);
  });

  test('a mined claim makes the ids it won claimed and reads them; ids it lost stay in flight', () => {
    const ev = noEvents();
    ev.claimed.set('1', WALLET).set('2', '0xother');
    const d = decideSettle(
      slot('mined', 'claim_batch', ['1', '2']),
      recs(held('1', 'claiming'), held('2', 'claiming')),
      facts(ev),
    );
    expect(d.writes).toEqual([
      { kind: 'put', record: { ...held('1', 'claiming'), state: 'claimed', updated_at_ms: NOW_MS } },
    ]);
    expect(d.effects[0]).toEqual({ kind: 'release', txKind: 'claim_batch', ids: ['1'], nonce: 5 });
    expect(d.effects).toContainEqual({ kind: 'fillDetails', ids: ['1'], tolerant: true });
  });

  test('a mined heartbeat paces the ids it heartbeated from its block; held ids it skipped are re-checked', () => {
    const ev = noEvents();
    ev.heartbeat.add('1');
    const d = decideSettle(
      slot('mined', 'heartbeat', ['1', '2', '3']),
      recs(held('1', 'running'), held('2', 'running')),
      facts(ev, { blockTimeS: 77 }),
    );
    expect(d.writes).toEqual([]);
    expect(d.effects).toEqual([
      { kind: 'heartbeatMined', ids: ['1'], nonce: 5, atS: 77 },
      { kind: 'recheck', ids: ['2'], why: 'heartbeat mined without accepting it' },
    ]);
  });

  test('a reorged claim puts back in flight only the ids no other tx holds', () => {
    const d = decideSettle(
      slot('reorged', 'claim', ['1', '2']),
      recs(),
      facts(noEvents(), { inFlight: new Set(['2']) }),
    );
    expect(d).toEqual({ writes: [], effects: [{ kind: 'track', txKind: 'claim', ids: ['1'], nonce: 5 }] });
  });

  test('a failed or reverted tx commits nothing: its ids are released, then re-checked', () => {
    const d = decideSettle(
      slot('failed', 'complete', ['1'], { error: { message: 'boom' } }),
      recs(held('1', 'completing')),
      facts(noEvents()),
    );
    expect(d.writes).toEqual([]);
    expect(kinds(d)).toEqual(['release', 'log', 'recheck']);
    const r = decideSettle(
      slot('confirmed', 'claim', ['1'], { status: 'reverted' }),
      recs(held('1', 'claiming')),
      facts(noEvents()),
    );
    expect(r.effects.at(-1)).toEqual({ kind: 'recheck', ids: ['1'], why: 'claim reverted' });
  });

  test('a landed complete moves to resuming and sends the resume after releasing the id; with no workflow it ends', () => {
    const ev = noEvents();
    ev.completed.add('1');
    const r = { ...held('1', 'completing'), result_ref: 'ref', workflow_instance: '4' };
    const d = decideSettle(slot('confirmed', 'complete', ['1']), recs(r), facts(ev));
    expect(d.writes).toEqual([{ kind: 'put', record: { ...r, state: 'resuming', updated_at_ms: NOW_MS } }]);
    expect(d.effects).toEqual([
      { kind: 'release', txKind: 'complete', ids: ['1'], nonce: 5 },
      { kind: 'resume', id: '1', workflowInstance: '4', resultRef: 'ref' },
    ]);
    const none = decideSettle(slot('confirmed', 'complete', ['1']), recs({ ...r, workflow_instance: '0' }), facts(ev));
    expect(none.writes).toMatchObject([
      { kind: 'end', done: { outcome: 'completed', resumed: true, result_ref: 'ref' } },
    ]);
  });

  test('a complete without its event is re-checked; a landed fail or resume ends the record', () => {
    const d = decideSettle(slot('confirmed', 'complete', ['1']), recs(held('1', 'completing')), facts(noEvents()));
    expect(d.effects).toEqual([
      { kind: 'release', txKind: 'complete', ids: ['1'], nonce: 5 },
      { kind: 'recheck', ids: ['1'], why: 'complete tx emitted no ActivityCompleted' },
    ]);
    const ev = noEvents();
    ev.failed.add('1');
    const f = decideSettle(
      slot('confirmed', 'fail', ['1']),
      recs({ ...held('1', 'failing'), fail_reason: 'x' }),
      facts(ev),
    );
    expect(f.writes).toMatchObject([{ kind: 'end', done: { outcome: 'failed', reason: 'x' } }]);
    const res = decideSettle(
      slot('confirmed', 'resume', ['1']),
      recs({ ...held('1', 'resuming'), result_ref: 'ref' }),
      facts(noEvents()),
    );
    expect(res.writes).toMatchObject([{ kind: 'end', done: { outcome: 'completed', resumed: true } }]);
  });

  test('property: deciding the same event again on the records it produced writes nothing more', () => {
    const STATES: InflightState[] = ['claiming', 'claimed', 'assigned', 'running', 'completing', 'failing', 'resuming'];
    const arb = fc.record({
      type: fc.constantFrom('mined', 'confirmed'),
      kind: fc.constantFrom('claim', 'claim_batch', 'heartbeat', 'complete', 'fail', 'resume'),
      states: fc.array(fc.option(fc.constantFrom(...STATES), { nil: undefined }), { minLength: 1, maxLength: 4 }),
      ours: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      wf: fc.constantFrom('0', '4'),
      blockTimeS: fc.integer({ min: 1_600_000_000, max: 1_800_000_000 }),
    });
    fc.assert(
      fc.property(arb, ({ type, kind, states, ours, wf, blockTimeS }) => {
        const ids = states.map((_, i) => String(i + 1));
        const records = recs(
          ...states.flatMap((s, i) =>
            s ? [{ ...held(String(i + 1), s), workflow_instance: wf, result_ref: 'r' }] : [],
          ),
        );
        const ev = noEvents();
        ids.forEach((id, i) => {
          if (!ours[i]) return;
          ev.claimed.set(id, WALLET);
          ev.heartbeat.add(id);
          ev.completed.add(id);
          ev.failed.add(id);
        });
        const e = slot(type, kind, ids);
        const f = facts(ev, { blockTimeS });
        const once = applied(records, decideSettle(e, records, f));
        const again = decideSettle(e, once, f);
        expect(applied(once, again)).toEqual(once);
      }),
    );
  });
});
