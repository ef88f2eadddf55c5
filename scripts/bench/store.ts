/**
 * Group `store`: store_commit_serial_per_s beside fsync_per_s of the same disk, measured the same way (one writer,
 * each write awaited before the next, 3 s each, in the same temp directory).
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimJobKey } from '../../src/store/keys.ts';
import { openStore } from '../../src/store/store.ts';
import { type BenchGroup, type Figure, quietLogger, round } from './common.ts';

const SECONDS = 3;
const RECORD = Buffer.alloc(120, 0x61);

export const store: BenchGroup = {
  name: 'store',
  issue: 12,
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'wcp-bench-store-'));
    try {
      // fsync: append one 120-byte record to a file and fsync it, one at a time.
      const fd = openSync(join(dir, 'fsync.bin'), 'a');
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < SECONDS * 1000) {
        writeSync(fd, RECORD);
        fsyncSync(fd);
        n++;
      }
      const fsyncRate = n / ((performance.now() - t0) / 1000);
      closeSync(fd);

      const st = openStore({ path: join(dir, 'wcp.db'), logger: quietLogger('store') });
      let m = 0;
      const put = (id: string) =>
        st.transact(
          (tx) =>
            tx.put(claimJobKey(id), {
              activity_id: id,
              queue_name: 'bench',
              created_at_ms: Date.now(),
              source: 'poll',
            }),
          { durable: true },
        );
      for (let i = 0; i < 50; i++) await put(String(1_000_000 + i)); // warm-up
      const t1 = performance.now();
      while (performance.now() - t1 < SECONDS * 1000) await put(String(m++));
      const commitRate = m / ((performance.now() - t1) / 1000);
      await st.close();
      ctx.log(`fsync ${Math.round(fsyncRate)}/s, store commits ${Math.round(commitRate)}/s`);
      const figures: Figure[] = [
        {
          name: 'store_commit_serial_per_s',
          value: Math.round(commitRate),
          unit: 'commits/s',
          reference: `fsync_per_s ${Math.round(fsyncRate)} (ratio ${round(commitRate / fsyncRate, 3)})`,
          target: 'close to fsync_per_s (one durable commit costs the disk syncs it needs, nothing more)',
          notes: `store.transact({durable:true}) of one ~120 B claim_job record, one writer awaiting each commit (no group commit possible), ${SECONDS} s, LMDB in a temp dir under ${tmpdir()}`,
        },
        {
          name: 'fsync_per_s',
          value: Math.round(fsyncRate),
          unit: 'fsyncs/s',
          notes: `write(120 B) + fsync of one file in the same temp dir, one at a time, ${SECONDS} s`,
        },
      ];
      return figures;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
