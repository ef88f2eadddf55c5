/**
 * The dev subnet-api's blob store: plain files under `{dataDir}/blobs/{activity_id}/{key}`. Writes go to a temp
 * file under `{dataDir}/tmp/` (same file system) and are renamed into place, so a reader never sees half a blob.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { activityIdProblem, objectKeyProblem } from '../../../src/storage/broker.ts';

export interface BlobStore {
  /** Absolute path of one object; throws on an invalid activity id or key (never escapes the activity's dir). */
  blobPath(activityId: string, key: string): string;
  /** A fresh temp file path on the same file system as the blobs. */
  tempPath(): string;
  /** Fsyncs `tmp` and renames it to the object's path (creating directories). */
  commit(tmp: string, activityId: string, key: string): Promise<string>;
  /** Writes a whole object atomically. Returns its path. */
  putBlob(activityId: string, key: string, bytes: Uint8Array | string): Promise<string>;
}

/** Creates the store's directories under `dataDir` and returns the store. */
export function createBlobStore(dataDir: string): BlobStore {
  const root = resolve(dataDir, 'blobs');
  const tmpDir = resolve(dataDir, 'tmp');
  mkdirSync(root, { recursive: true });
  mkdirSync(tmpDir, { recursive: true });

  const blobPath = (activityId: string, key: string): string => {
    const problem = activityIdProblem(activityId) ?? objectKeyProblem(key);
    if (problem) throw new Error(`invalid blob address: ${problem}`);
    const activityDir = join(root, activityId);
    const p = resolve(activityDir, ...key.split('/'));
    // Belt and braces: the checks above already exclude '..', this makes escaping structurally impossible.
    if (!p.startsWith(activityDir + sep)) throw new Error('invalid blob address: escapes the activity directory');
    return p;
  };

  const commit = async (tmp: string, activityId: string, key: string): Promise<string> => {
    const dest = blobPath(activityId, key);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await mkdir(dirname(dest), { recursive: true });
    await rename(tmp, dest);
    return dest;
  };

  return {
    blobPath,
    tempPath: () => join(tmpDir, `${randomUUID()}.part`),
    commit,
    async putBlob(activityId, key, bytes) {
      blobPath(activityId, key);
      const tmp = join(tmpDir, `${randomUUID()}.part`);
      try {
        const fh = await open(tmp, 'wx');
        try {
          await fh.writeFile(bytes);
        } finally {
          await fh.close();
        }
        return await commit(tmp, activityId, key);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
    },
  };
}
