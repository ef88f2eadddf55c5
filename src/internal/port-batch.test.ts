import { expect, test } from 'bun:test';
import { MessageChannel } from 'node:worker_threads';
import { batchedPoster, unbatch } from './port-batch.ts';

test('messages posted in one turn arrive as one batch, in order; a lone message as itself', async () => {
  const { port1, port2 } = new MessageChannel();
  const raw: unknown[] = [];
  const got: unknown[] = [];
  port2.on('message', (m) => {
    raw.push(m);
    unbatch(m, (x) => got.push(x));
  });
  const p = batchedPoster<{ type: string; n: number }>(
    (m) => port1.postMessage(m),
    () => {},
  );
  for (let n = 0; n < 3; n++) p.post({ type: 'x', n });
  await new Promise((r) => setTimeout(r, 20));
  p.post({ type: 'y', n: 3 });
  await new Promise((r) => setTimeout(r, 20));
  expect(got).toEqual([
    { type: 'x', n: 0 },
    { type: 'x', n: 1 },
    { type: 'x', n: 2 },
    { type: 'y', n: 3 },
  ]);
  expect(raw.length).toBe(2);
  expect(raw[1]).toEqual({ type: 'y', n: 3 });
  port1.close();
});

test('a batch that cannot be posted goes one by one: only the bad message is lost, and reported', () => {
  const posted: unknown[] = [];
  const failed: unknown[] = [];
  const p = batchedPoster<{ ok: boolean }>(
    (m) => {
      const bad = 'messages' in m ? m.messages.some((x) => !x.ok) : !m.ok;
      if (bad) throw new Error('DataCloneError');
      posted.push(m);
    },
    (m) => failed.push(m),
  );
  p.post({ ok: true });
  p.post({ ok: false });
  p.post({ ok: true });
  p.flush();
  expect(posted).toEqual([{ ok: true }, { ok: true }]);
  expect(failed).toEqual([{ ok: false }]);
});
