/**
 * `wcp status` as text: the same sections as the operator's page (`GET /`, `src/internal/status-page.html`), in the
 * same order and with the same figures, from the daemon's `/status`: worker and runway, readiness and claim pauses,
 * spend, chain, nonce lane, executors, activities by state, the most recent activities and the last warnings and
 * errors. Text from outside (executor messages, refs, RPC errors) is printed with control characters replaced, so
 * nothing it holds can drive the terminal.
 */

type J = Record<string, unknown>;

/** Lists are cut to this many lines (the page shows 50; `--json` has them all). */
export const TEXT_LIST_MAX = 10;

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
/** A value as one printable line. */
export const clean = (v: unknown): string =>
  (v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v))
    .replace(CONTROL, '?')
    .replace(/\n/g, ' ');

/** Seconds as the page shows them: `4.2 s`, `3 m 5 s`, `2 h 10 m`, `3 d 4 h`. */
export function dur(s: unknown): string {
  if (typeof s !== 'number') return '—';
  if (s < 60) return `${Math.round(s * 10) / 10} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

const eth = (x: unknown) => (typeof x !== 'number' ? '—' : `${Math.abs(x) >= 1 ? x.toFixed(6) : x.toPrecision(6)} ETH`);
const obj = (x: unknown): J => (x !== null && typeof x === 'object' ? (x as J) : {});
const arr = (x: unknown): J[] => (Array.isArray(x) ? (x as J[]) : []);
const pad = (rows: string[][], indent = '  ') => {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => `${indent}${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd());
};
const cut = <T>(xs: T[], what: string): { shown: T[]; note: string } => ({
  shown: xs.slice(0, TEXT_LIST_MAX),
  note: xs.length > TEXT_LIST_MAX ? ` (${TEXT_LIST_MAX} of ${xs.length}; --json for all ${what})` : '',
});

/** The summary of a daemon's `/status` body (with `source`), as lines of text. */
export function statusText(s: J): string {
  const out: string[] = [];
  const w = obj(s.worker);
  const rd = obj(s.readiness);
  out.push(`wcp status: ${clean(s.source)}`);
  out.push(`state ${clean(s.state)} · ${rd.ready ? 'ready' : 'NOT READY'}`);

  const spend = obj(s.spend);
  const rw = obj(spend.runway);
  const hours = typeof rw.hours === 'number' ? rw.hours : null;
  out.push('Worker');
  out.push(
    ...pad([
      ['address', clean(w.address)],
      [
        'registered',
        w.registered === null || w.registered === undefined
          ? 'not read yet'
          : w.registered
            ? 'active worker'
            : 'NOT an active worker',
      ],
      ['balance', eth(w.balance_eth)],
      [
        'runway',
        hours === null
          ? 'no spend yet'
          : `${hours.toFixed(1)} h (≈ ${(hours / 24).toFixed(1)} days) at the last ${rw.rate_window === '1h' ? 'hour' : '24 h'}'s rate${hours < 24 ? '  ← below 24 h' : ''}`,
      ],
      ['spend / h', typeof rw.eth_per_hour === 'number' ? `${rw.eth_per_hour.toPrecision(6)} ETH/h` : '—'],
      ['version', `${clean(w.version)} (${clean(w.commit)}) · ${clean(w.runtime)}`],
      ['uptime', dur(w.uptime_s)],
    ]),
  );

  out.push('Readiness');
  for (const c of arr(rd.checks))
    out.push(
      `  ${c.ok ? '✓' : '✗'} ${clean(c.name)}: ${clean(c.detail)}${!c.ok && c.fix ? ` (fix: ${clean(c.fix)})` : ''}`,
    );
  const paused = arr(rd.claims_paused);
  out.push(`Claims: ${paused.length ? 'PAUSED' : 'running'}`);
  for (const p of paused) {
    const detail = Object.entries(obj(p.detail))
      .map(([k, v]) => `${k}=${clean(v)}`)
      .join(' ');
    out.push(`  paused (${clean(p.reason)}): ${clean(p.what)}${detail ? ` · ${detail}` : ''}`);
  }

  const h = obj(spend.last_hour);
  const d = obj(spend.last_24h);
  const share = (x: J) => (typeof x.wasted_share === 'number' ? `${(x.wasted_share * 100).toFixed(2)} %` : '—');
  out.push('Spend');
  out.push(
    ...pad([
      ['', 'last hour', 'last 24 h'],
      ['ETH spent', eth(h.eth), eth(d.eth)],
      ['ETH / hour', eth(h.eth_per_hour), eth(d.eth_per_hour)],
      ['transactions', clean(h.txs), clean(d.txs)],
      ['completed activities', clean(h.completed), clean(d.completed)],
      ['gas / completed', clean(h.gas_per_completed), clean(d.gas_per_completed)],
      ['ETH / completed', eth(h.eth_per_completed), eth(d.eth_per_completed)],
      ['wasted share', share(h), share(d)],
    ]),
  );

  const ch = obj(s.chain);
  out.push('Chain');
  out.push(
    ...pad([
      ['endpoint', 'head', 'lag', 'state'],
      ...arr(ch.endpoints).map((e) => [
        clean(e.url),
        clean(e.lastBlock),
        clean(e.lagBlocks),
        e.up ? 'up' : `down: ${clean(e.lastError ?? '')}`,
      ]),
    ]),
  );
  const ws = ch.ws ? obj(ch.ws) : null;
  const found = ch.last_found ? obj(ch.last_found) : null;
  const pollErr = ch.last_poll_error ? obj(ch.last_poll_error) : null;
  const scan = obj(ch.last_scan);
  const ago = (ms: unknown) => (typeof ms === 'number' ? `${dur((Date.now() - ms) / 1000)} ago` : '—');
  out.push(
    ...pad([
      ['best head', clean(ch.head)],
      [
        'new-head feed',
        ws
          ? `${clean(ws.url)}: ${clean(ws.state)}, ${clean(ws.heads ?? 0)} heads, last ${clean(ws.last_head)}, ${clean(ws.failures ?? 0)} failures`
          : 'off (polling only)',
      ],
      ['work last found', found ? `${ago(found.at_ms)} (${clean(found.activities)} activities)` : '—'],
      ['last poll error', pollErr ? `${ago(pollErr.at_ms)}: ${clean(pollErr.error)}` : 'none'],
      [
        'last scan',
        scan.to_block !== undefined
          ? `blocks ${clean(scan.from_block)}–${clean(scan.to_block)} (${clean(scan.reason)}), ${ago(scan.at_ms)}`
          : '—',
      ],
      ['scan checkpoint', clean(scan.checkpoint_block)],
    ]),
  );

  const ln = s.lane ? obj(s.lane) : null;
  out.push('Nonce lane');
  if (ln) {
    const st = ln.oldest_stuck ? obj(ln.oldest_stuck) : null;
    out.push(
      `  state ${clean(ln.state)} · next nonce ${clean(ln.next_nonce)} · in flight ${clean(ln.in_flight)} · funds ${ln.funds_blocked ? 'BLOCKED: the wallet cannot pay' : 'ok'} · oldest stuck ${st ? `nonce ${clean(st.nonce)} (${clean(st.kind)}), ${dur(st.age_s)}, ${clean(st.bumps)} bumps` : 'none'}`,
    );
    const pending = arr(ln.pending);
    if (pending.length)
      out.push(
        ...pad([
          ['nonce', 'kind', 'state', 'age', 'bumps', 'tx'],
          ...pending.map((p) => [
            clean(p.nonce),
            clean(p.kind),
            clean(p.state),
            dur(p.age_s),
            clean(p.bumps),
            clean(p.hash),
          ]),
        ]),
      );
  } else out.push('  not running (observe mode or starting)');

  out.push('Executors');
  for (const x of arr(s.executors))
    out.push(
      `  ${clean(x.endpoint)} ${x.connected ? 'connected' : 'NOT connected'} · types ${arr(x.types).map(clean).join(', ') || 'none'} · credits ${clean(x.credits)} · running ${clean(x.running)}`,
    );
  const act = obj(s.activities);
  out.push(`Activities by state (held ${clean(act.held)})`);
  out.push(
    ...pad(
      Object.entries(obj(act.by_state)).map(([st, v]) => [
        st,
        clean(obj(v).count),
        `oldest ${dur(obj(v).oldest_age_s)}`,
      ]),
    ),
  );

  const recent = cut(arr(act.recent), 'activities');
  out.push(`Recent activities${recent.note}`);
  for (const a of recent.shown) {
    const times = arr(a.states)
      .map((x) => `${clean(x.state)} ${dur(x.for_s)}`)
      .join(' → ');
    const txs = arr(a.txs)
      .map((t) => `${clean(t.kind)} ${clean(t.hash)}`)
      .join(', ');
    out.push(
      `  ${clean(a.id)} ${clean(a.type)} ${clean(a.state)} · attempts ${clean(a.attempts)} · executor ${clean(a.executor)}`,
    );
    out.push(`      ${times}${txs ? ` · txs ${txs}` : ''}`);
    if (a.reason) out.push(`      reason: ${clean(a.reason)}`);
  }

  const problems = cut(arr(s.recent_problems).slice().reverse(), 'warnings and errors');
  out.push(`Last warnings and errors${problems.note}`);
  if (problems.shown.length === 0) out.push('  none');
  for (const p of problems.shown) {
    const fields = Object.entries(obj(p.fields))
      .map(([k, v]) => `${k}=${clean(v)}`)
      .join(' ');
    out.push(
      `  ${clean(p.ts)} ${clean(p.level).toUpperCase()} [${clean(p.tag)}] ${clean(p.msg)}${fields ? ` ${fields}` : ''}`,
    );
  }
  return `${out.join('\n')}\n`;
}
