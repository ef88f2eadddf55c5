/**
 * Who owns each non-activity namespace of the dev subnet-api (`seed`, …): the address whose signed upload came
 * first. Kept in `{dataDir}/owners.json` (rewritten atomically on each new owner), so a restart keeps ownership.
 * Activity namespaces (decimal ids) have no entry: the chain says who may touch them.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NamespaceOwners {
  /** The owner (lower-case address), or undefined when nobody uploaded there yet. */
  get(namespace: string): string | undefined;
  /** Records `owner` for a namespace that has none; returns the namespace's owner afterwards. */
  claim(namespace: string, owner: string): string;
  /** Every namespace and its owner. */
  all(): Record<string, string>;
}

/** Loads (or starts) the owners file under `dataDir`. */
export function createNamespaceOwners(dataDir: string): NamespaceOwners {
  const file = join(dataDir, 'owners.json');
  const owners = new Map<string, string>(
    existsSync(file) ? Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : [],
  );
  const save = (): void => {
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(owners), null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  };
  return {
    get: (ns) => owners.get(ns),
    claim(ns, owner) {
      const current = owners.get(ns);
      if (current !== undefined) return current;
      owners.set(ns, owner.toLowerCase());
      save();
      return owner.toLowerCase();
    },
    all: () => Object.fromEntries(owners),
  };
}
