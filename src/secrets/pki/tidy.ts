// tidy, tidy-status, tidy-cancel and config/auto-tidy, after current Vault's PKI (1.11+):
// a tidy removes certificates (and revoked ones) expired past safety_buffer, re-associates
// revoked certificates with their issuers, and removes issuers expired past
// issuer_safety_buffer; its progress and outcome are kept per mount (in memory, as Vault
// keeps them per node) for tidy-status; tidy-cancel stops it between entries; auto-tidy runs
// it from Vault's periodic call once interval_duration has passed since the last one.
import { X509Certificate } from 'node:crypto';
import { getJson, putJson, type Storage } from '../../storage/storage';
import { parseDurationMillis } from '../../schema/duration';
import { UserError, type FieldDef, type PathDef, type Response } from '../framework';
import type { PkiCaches } from './index';
import { issuerKey, signedBy, type IssuerEntry } from './issuers';
import { CRL_PREFIX, rebuildAllCrls } from './revoke';

const DAY = 86_400;

/** config/auto-tidy as stored (durations in seconds, pause_duration in milliseconds). */
export interface TidyConfig {
  enabled: boolean;
  interval_duration: number;
  tidy_cert_store: boolean;
  tidy_revoked_certs: boolean;
  tidy_revoked_cert_issuer_associations: boolean;
  tidy_expired_issuers: boolean;
  tidy_move_legacy_ca_bundle: boolean;
  tidy_acme: boolean;
  safety_buffer: number;
  issuer_safety_buffer: number;
  acme_account_safety_buffer: number;
  pause_duration_ms: number;
  publish_stored_certificate_count_metrics: boolean;
  maintain_stored_certificate_counts: boolean;
  tidy_revocation_queue: boolean;
  revocation_queue_safety_buffer: number;
  tidy_cross_cluster_revoked_certs: boolean;
}

/** Vault's defaults (defaultTidyConfig). */
const DEFAULT_CONFIG: TidyConfig = {
  enabled: false,
  interval_duration: 12 * 3600,
  tidy_cert_store: false,
  tidy_revoked_certs: false,
  tidy_revoked_cert_issuer_associations: false,
  tidy_expired_issuers: false,
  tidy_move_legacy_ca_bundle: false,
  tidy_acme: false,
  safety_buffer: 72 * 3600,
  issuer_safety_buffer: 365 * DAY,
  acme_account_safety_buffer: 30 * DAY,
  pause_duration_ms: 0,
  publish_stored_certificate_count_metrics: false,
  maintain_stored_certificate_counts: false,
  tidy_revocation_queue: false,
  revocation_queue_safety_buffer: 48 * 3600,
  tidy_cross_cluster_revoked_certs: false,
};

const AUTO_TIDY_KEY = 'pki/config/auto-tidy';
/** When the last tidy finished (or a manual one started), kept so a restarted plugin keeps the auto-tidy schedule. */
const LAST_TIDY_KEY = 'pki/tidy/last';

/** The tidy targets, by their request field, as Vault lists them. */
const TARGETS = [
  'tidy_cert_store',
  'tidy_revoked_certs',
  'tidy_revoked_cert_issuer_associations',
  'tidy_expired_issuers',
  'tidy_move_legacy_ca_bundle',
  'tidy_revocation_queue',
  'tidy_cross_cluster_revoked_certs',
] as const;

/** The fields tidy and config/auto-tidy share (Vault's addTidyFields). */
const TIDY_FIELDS: Record<string, FieldDef> = {
  tidy_cert_store: { type: 'bool', default: false, description: 'Remove certificates (not revoked) expired for longer than safety_buffer.' },
  tidy_revoked_certs: {
    type: 'bool',
    default: false,
    description: 'Remove revoked certificates expired for longer than safety_buffer (and so from the CRLs).',
  },
  tidy_revocation_list: { type: 'bool', default: false, description: 'Deprecated name of tidy_revoked_certs (tidy only).' },
  tidy_revoked_cert_issuer_associations: {
    type: 'bool',
    default: false,
    description: 'Associate each revoked certificate with the issuer that signed it (for CRLs); counts those that had none as missing_issuer_cert_count.',
  },
  tidy_expired_issuers: {
    type: 'bool',
    default: false,
    description: 'Remove issuers expired for longer than issuer_safety_buffer (never the default issuer; their keys stay).',
  },
  tidy_move_legacy_ca_bundle: {
    type: 'bool',
    default: false,
    description: 'Accepted as Vault does; nothing to do here: a legacy CA bundle is migrated and removed when it is first read.',
  },
  tidy_revocation_queue: { type: 'bool', default: false, description: 'Accepted; this plugin has no cross-cluster revocation queue, so nothing is removed.' },
  tidy_cross_cluster_revoked_certs: { type: 'bool', default: false, description: 'Accepted; this plugin has no cross-cluster (unified) revocation store.' },
  tidy_acme: { type: 'bool', default: false, description: 'Accepted; this plugin has no ACME server, so there is nothing to tidy.' },
  safety_buffer: { type: 'duration', default: DEFAULT_CONFIG.safety_buffer, description: 'How long past its expiry a certificate is kept (default 72h).' },
  issuer_safety_buffer: {
    type: 'duration',
    default: DEFAULT_CONFIG.issuer_safety_buffer,
    description: 'How long past its expiry an issuer is kept (default 8760h).',
  },
  revocation_queue_safety_buffer: {
    type: 'duration',
    default: DEFAULT_CONFIG.revocation_queue_safety_buffer,
    description: 'Accepted (default 48h); see tidy_revocation_queue.',
  },
  acme_account_safety_buffer: { type: 'duration', default: DEFAULT_CONFIG.acme_account_safety_buffer, description: 'Accepted (default 720h); see tidy_acme.' },
  pause_duration: {
    type: 'string',
    default: '0s',
    description: 'A pause between entries ("0s": none), to spread the storage load; a tidy with a pause runs in the background.',
  },
};

/** Go's time.Duration.String() of a whole number of milliseconds ("0s", "250ms", "1.5s", "1m30s", "2h0m0s"). */
export function goDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = `${(ms % 60_000) / 1000}s`;
  return h ? `${h}h${m}m${s}` : m ? `${m}m${s}` : s;
}

/** pause_duration as Vault reads it (a Go duration), in milliseconds; a 400 otherwise. */
function pauseMs(v: string): number {
  if (v.trim().startsWith('-')) throw new UserError('received invalid, negative pause_duration');
  return parseDurationMillis(v, 'pause_duration', (m) => new UserError(`Error parsing pause_duration: ${m}`));
}

type TidyParams = Omit<TidyConfig, 'enabled' | 'interval_duration' | 'publish_stored_certificate_count_metrics' | 'maintain_stored_certificate_counts'>;
type TidyStateName = 'Running' | 'Finished' | 'Error' | 'Cancelling' | 'Cancelled';

/** One tidy: what it was asked, how far it got, what it removed. */
interface TidyRun {
  params: TidyParams;
  state: TidyStateName;
  error?: string;
  time_started: Date;
  time_finished?: Date;
  message: string | null;
  cert_store_deleted_count: number;
  revoked_cert_deleted_count: number;
  missing_issuer_cert_count: number;
}

class Cancelled extends Error {}

/** A mount's tidy: the last (or running) one, the cancel request, and when the last one finished. */
class TidyState {
  last?: TidyRun;
  running?: Promise<void>;
  cancelRequested = false;
  lastTidy = new Date();
}
const states = new WeakMap<PkiCaches, TidyState>();
const stateOf = (caches: PkiCaches) => {
  let s = states.get(caches);
  if (!s) {
    s = new TidyState();
    states.set(caches, s);
  }
  return s;
};

interface CertRecord {
  certificate: string;
  revocation_time?: number;
  issuer_id?: string;
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** The issuer in `issuers` whose certificate signed `cert`, if any. */
function signerOf(cert: X509Certificate, issuers: Map<string, { entry: IssuerEntry; cert: X509Certificate }>): string | undefined {
  for (const [id, i] of issuers) if (signedBy(cert, i.cert)) return id;
  return undefined;
}

/** Run one tidy to its end (or its cancellation), keeping `run` current for tidy-status. */
async function doTidy(storage: Storage, caches: PkiCaches, state: TidyState, run: TidyRun): Promise<void> {
  const p = run.params;
  const step = async () => {
    if (state.cancelRequested) throw new Cancelled('tidy operation cancelled');
    // The pause, cut short by tidy-cancel (or the mount going away): a long pause_duration never holds either up.
    for (const end = Date.now() + p.pause_duration_ms; !state.cancelRequested && Date.now() < end; ) await sleep(Math.min(100, end - Date.now()));
    if (state.cancelRequested) throw new Cancelled('tidy operation cancelled');
  };
  const now = Date.now();
  let rebuild = false;
  if (p.tidy_cert_store) {
    const serials = await storage.list('pki/certs/');
    for (const [i, serial] of serials.entries()) {
      run.message = `Tidying certificate store: checking entry ${i} of ${serials.length}`;
      await step();
      const rec = await getJson<CertRecord>(storage, `pki/certs/${serial}`);
      // As Vault: an entry with nothing in it serves nothing; it goes.
      if (!rec?.certificate) {
        await storage.delete(`pki/certs/${serial}`);
        run.cert_store_deleted_count++;
        continue;
      }
      if (rec.revocation_time) continue; // revoked ones are tidy_revoked_certs' (they make the CRL)
      let notAfter: number;
      try {
        notAfter = new X509Certificate(rec.certificate).validToDate.getTime();
      } catch {
        throw new Error(`unable to parse stored certificate with serial ${serial}`);
      }
      if (now - notAfter > p.safety_buffer * 1000) {
        await storage.delete(`pki/certs/${serial}`);
        run.cert_store_deleted_count++;
      }
    }
  }
  if (state.cancelRequested) throw new Cancelled('tidy operation cancelled');
  if (p.tidy_revoked_certs || p.tidy_revoked_cert_issuer_associations) {
    const reg = await caches.ca.registry(storage);
    const issuers = new Map([...reg.issuers.values()].map((e) => [e.issuer_id, { entry: e, cert: new X509Certificate(e.certificate) }]));
    const serials = await storage.list('pki/certs/');
    for (const [i, serial] of serials.entries()) {
      run.message = `Tidying revoked certificates: checking certificate ${i} of ${serials.length}`;
      await step();
      const rec = await getJson<CertRecord>(storage, `pki/certs/${serial}`);
      if (!rec?.revocation_time) continue;
      const cert = new X509Certificate(rec.certificate);
      let changed: CertRecord | undefined;
      if (p.tidy_revoked_cert_issuer_associations && !(rec.issuer_id && issuers.has(rec.issuer_id))) {
        run.missing_issuer_cert_count++;
        const { issuer_id: _, ...rest } = rec;
        const found = signerOf(cert, issuers);
        changed = found ? { ...rest, issuer_id: found } : rest;
      }
      if (p.tidy_revoked_certs && now - cert.validToDate.getTime() > p.safety_buffer * 1000) {
        await storage.delete(`pki/certs/${serial}`);
        run.revoked_cert_deleted_count++;
        rebuild = true;
        continue;
      }
      if (changed) {
        await putJson(storage, `pki/certs/${serial}`, changed);
        rebuild = true;
      }
    }
  }
  if (state.cancelRequested) throw new Cancelled('tidy operation cancelled');
  if (p.tidy_expired_issuers) {
    run.message = 'Tidying expired issuers';
    const reg = await caches.ca.registry(storage);
    for (const e of reg.issuers.values()) {
      if (now - new X509Certificate(e.certificate).validToDate.getTime() <= p.issuer_safety_buffer * 1000) continue;
      // As Vault: the default issuer is never removed by tidy, expired or not.
      if (e.issuer_id === reg.config.default) continue;
      await storage.delete(issuerKey(e.issuer_id));
      await storage.delete(`${CRL_PREFIX}${e.issuer_id}`);
      rebuild = true;
    }
    // Chains naming a removed issuer are left as they are: they are PEM copies, not references.
  }
  if (rebuild) await rebuildAllCrls(storage, caches);
}

/** Start a tidy (unless one runs): it runs in the background; the promise is its end. */
function startTidy(storage: Storage, caches: PkiCaches, params: TidyParams): Promise<void> | undefined {
  const state = stateOf(caches);
  if (state.running) return undefined;
  const run: TidyRun = {
    params,
    state: 'Running',
    time_started: new Date(),
    message: null,
    cert_store_deleted_count: 0,
    revoked_cert_deleted_count: 0,
    missing_issuer_cert_count: 0,
  };
  state.last = run;
  state.cancelRequested = false;
  const done = doTidy(storage, caches, state, run).then(
    async () => {
      run.state = 'Finished';
      run.time_finished = new Date();
      state.lastTidy = run.time_finished;
      await putJson(storage, LAST_TIDY_KEY, { time: state.lastTidy.toISOString() }).catch(() => undefined);
    },
    (e: unknown) => {
      run.state = e instanceof Cancelled ? 'Cancelled' : 'Error';
      if (!(e instanceof Cancelled)) run.error = e instanceof Error ? e.message : String(e);
      run.time_finished = new Date();
    },
  );
  state.running = done.finally(() => {
    state.running = undefined;
    state.cancelRequested = false;
  });
  return state.running;
}

/** tidy-status's answer, as current Vault's (nulls before any tidy). */
function statusData(state: TidyState): Record<string, unknown> {
  const r = state.last;
  const base: Record<string, unknown> = {
    safety_buffer: null,
    issuer_safety_buffer: null,
    tidy_cert_store: null,
    tidy_revoked_certs: null,
    tidy_revoked_cert_issuer_associations: null,
    tidy_expired_issuers: null,
    tidy_move_legacy_ca_bundle: null,
    tidy_revocation_queue: null,
    tidy_cross_cluster_revoked_certs: null,
    tidy_acme: null,
    pause_duration: null,
    state: 'Inactive',
    error: null,
    time_started: null,
    time_finished: null,
    message: null,
    cert_store_deleted_count: null,
    revoked_cert_deleted_count: null,
    missing_issuer_cert_count: null,
    current_cert_store_count: null,
    current_revoked_cert_count: null,
    internal_backend_uuid: null,
    revocation_queue_deleted_count: null,
    cross_revoked_cert_deleted_count: null,
    total_acme_account_count: null,
    acme_account_deleted_count: null,
    acme_account_revoked_count: null,
    acme_orders_deleted_count: null,
    acme_account_safety_buffer: null,
  };
  if (!r) return base;
  const p = r.params;
  const finished = r.state !== 'Running' && r.state !== 'Cancelling';
  return {
    ...base,
    safety_buffer: p.safety_buffer,
    issuer_safety_buffer: p.issuer_safety_buffer,
    tidy_cert_store: p.tidy_cert_store,
    tidy_revoked_certs: p.tidy_revoked_certs,
    tidy_revoked_cert_issuer_associations: p.tidy_revoked_cert_issuer_associations,
    tidy_expired_issuers: p.tidy_expired_issuers,
    tidy_move_legacy_ca_bundle: p.tidy_move_legacy_ca_bundle,
    tidy_revocation_queue: p.tidy_revocation_queue,
    tidy_cross_cluster_revoked_certs: p.tidy_cross_cluster_revoked_certs,
    tidy_acme: p.tidy_acme,
    pause_duration: goDurationMs(p.pause_duration_ms),
    state: r.state,
    error: r.state === 'Error' ? (r.error ?? '') : null,
    time_started: r.time_started.toISOString(),
    time_finished: finished && r.time_finished ? r.time_finished.toISOString() : null,
    // As Vault: a finished tidy's message is cleared; an errored one keeps it as a hint of where it stopped.
    message: r.state === 'Finished' ? null : r.message,
    cert_store_deleted_count: r.cert_store_deleted_count,
    revoked_cert_deleted_count: r.revoked_cert_deleted_count,
    missing_issuer_cert_count: r.missing_issuer_cert_count,
    revocation_queue_deleted_count: 0,
    cross_revoked_cert_deleted_count: 0,
    revocation_queue_safety_buffer: p.revocation_queue_safety_buffer,
    last_auto_tidy_finished: state.lastTidy.toISOString(),
    total_acme_account_count: 0,
    acme_account_deleted_count: 0,
    acme_account_revoked_count: 0,
    acme_orders_deleted_count: 0,
    acme_account_safety_buffer: p.acme_account_safety_buffer,
  };
}

/** Vault answers tidy with 202 Accepted and its warnings; the body is a JSON response. */
function accepted(warnings: string[]): Response {
  return {
    data: {
      http_content_type: 'application/json',
      http_raw_body: Buffer.from(
        JSON.stringify({ request_id: '', lease_id: '', renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings, auth: null }),
      ).toString('base64'),
      http_status_code: 202,
    },
  };
}

async function loadConfig(s: Storage): Promise<TidyConfig> {
  return { ...DEFAULT_CONFIG, ...((await getJson<Partial<TidyConfig>>(s, AUTO_TIDY_KEY)) ?? {}) };
}

/** config/auto-tidy's answer: Vault's field names, durations in seconds, pause_duration as Go prints it. */
function configData(c: TidyConfig): Record<string, unknown> {
  const { pause_duration_ms, ...rest } = c;
  return { ...rest, pause_duration: goDurationMs(pause_duration_ms) };
}

const positive = (name: string, v: number) => {
  if (v < 1) throw new UserError(`${name} must be greater than zero`);
  return v;
};

/**
 * Vault's periodic call: run the auto-tidy when config/auto-tidy enables it and
 * interval_duration has passed since the last tidy ended (or a manual one started).
 */
export async function autoTidy(storage: Storage, caches: PkiCaches, now = Date.now()): Promise<boolean> {
  const state = stateOf(caches);
  if (state.running) return false;
  const c = await loadConfig(storage);
  if (!c.enabled || c.interval_duration <= 0) return false;
  const stored = await getJson<{ time: string }>(storage, LAST_TIDY_KEY);
  const last = Math.max(state.lastTidy.getTime(), stored ? Date.parse(stored.time) || 0 : 0);
  if (now - last < c.interval_duration * 1000) return false;
  const { enabled: _e, interval_duration: _i, publish_stored_certificate_count_metrics: _p, maintain_stored_certificate_counts: _m, ...params } = c;
  const run = startTidy(storage, caches, params);
  // A tidy without pauses is a storage scan: the periodic call waits for it; one with pauses runs on.
  if (run && params.pause_duration_ms === 0) await run;
  return Boolean(run);
}

/** The mount goes away: a running tidy stops at its next entry. */
export function stopTidy(caches: PkiCaches): Promise<void> | undefined {
  const state = states.get(caches);
  if (state?.running) state.cancelRequested = true;
  return state?.running;
}

/** tidy, tidy-status, tidy-cancel and config/auto-tidy. */
export function tidyPaths(caches: PkiCaches): PathDef[] {
  return [
    {
      pattern: 'tidy',
      fields: TIDY_FIELDS,
      synopsis: 'Remove expired certificates, revoked ones and issuers past their safety buffers.',
      description:
        'Answers 202 as Vault does; tidy-status tells how it went. Without pause_duration the work (a storage scan) is done before the answer; with one it runs in the background, and tidy-cancel can stop it.',
      operations: {
        update: async (r) => {
          const params: TidyParams = {
            tidy_cert_store: r.data.bool('tidy_cert_store'),
            tidy_revoked_certs: r.data.bool('tidy_revoked_certs') || r.data.bool('tidy_revocation_list'),
            tidy_revoked_cert_issuer_associations: r.data.bool('tidy_revoked_cert_issuer_associations'),
            tidy_expired_issuers: r.data.bool('tidy_expired_issuers'),
            tidy_move_legacy_ca_bundle: r.data.bool('tidy_move_legacy_ca_bundle'),
            tidy_revocation_queue: r.data.bool('tidy_revocation_queue'),
            tidy_cross_cluster_revoked_certs: r.data.bool('tidy_cross_cluster_revoked_certs'),
            tidy_acme: r.data.bool('tidy_acme'),
            safety_buffer: positive('safety_buffer', r.data.int('safety_buffer')),
            issuer_safety_buffer: positive('issuer_safety_buffer', r.data.int('issuer_safety_buffer')),
            revocation_queue_safety_buffer: positive('revocation_queue_safety_buffer', r.data.int('revocation_queue_safety_buffer')),
            acme_account_safety_buffer: positive('acme_account_safety_buffer', r.data.int('acme_account_safety_buffer')),
            pause_duration_ms: pauseMs(r.data.str('pause_duration')),
          };
          const state = stateOf(caches);
          if (state.running) return { warnings: ['Tidy operation already in progress.'] };
          // As Vault: a manual tidy counts as the last one for the auto-tidy schedule.
          state.lastTidy = new Date();
          const run = startTidy(r.storage, caches, params);
          if (run && params.pause_duration_ms === 0) await run;
          return accepted([
            TARGETS.some((t) => params[t])
              ? "Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."
              : `No targets to tidy; specify ${TARGETS.map((t) => `${t}=true`).join(' or ')} to start a tidy operation.`,
          ]);
        },
      },
    },
    {
      pattern: 'tidy-status',
      fields: {},
      synopsis: 'The state of the running tidy, or of the last one.',
      description:
        "Vault's fields: the parameters it ran with, state (Inactive, Running, Finished, Error, Cancelling, Cancelled), error, time_started, time_finished, message, and what it removed (cert_store_deleted_count, revoked_cert_deleted_count, missing_issuer_cert_count). Kept in memory per mount, as Vault keeps it per node.",
      operations: { read: async () => ({ data: statusData(stateOf(caches)) }) },
    },
    {
      pattern: 'tidy-cancel',
      fields: {},
      synopsis: 'Stop the running tidy at its next entry.',
      description: 'Answers tidy-status (state Cancelling); with no tidy running, a warning.',
      operations: {
        update: async () => {
          const state = stateOf(caches);
          if (!state.running) return { warnings: ['Tidy operation cannot be cancelled as none is currently running.'] };
          state.cancelRequested = true;
          if (state.last?.state === 'Running') state.last.state = 'Cancelling';
          return { data: statusData(state) };
        },
      },
    },
    {
      pattern: 'config/auto-tidy',
      fields: {
        ...TIDY_FIELDS,
        enabled: { type: 'bool', default: false, description: "Run a tidy with these settings from Vault's periodic call, every interval_duration." },
        interval_duration: {
          type: 'duration',
          default: DEFAULT_CONFIG.interval_duration,
          description: 'Time from the end of one tidy to the start of the next (default 12h); a manual tidy resets it.',
        },
        maintain_stored_certificate_counts: {
          type: 'bool',
          default: false,
          description: 'Stored as Vault does; this plugin keeps no running certificate counts.',
        },
        publish_stored_certificate_count_metrics: {
          type: 'bool',
          default: false,
          description: 'Stored as Vault does (requires maintain_stored_certificate_counts).',
        },
      },
      synopsis: 'Read or set the automatic tidy.',
      description:
        "As current Vault: a field left out keeps its stored value. The auto-tidy runs from Vault's periodic (rollback) call, about once a minute, so its interval is kept to within a minute.",
      operations: {
        read: async (r) => ({ data: configData(await loadConfig(r.storage)) }),
        update: async (r) => {
          const c = await loadConfig(r.storage);
          const set = <K extends keyof TidyConfig>(k: K, v: () => TidyConfig[K]) => {
            if (r.data.has(k)) c[k] = v();
          };
          set('enabled', () => r.data.bool('enabled'));
          set('interval_duration', () => r.data.int('interval_duration'));
          for (const k of [...TARGETS, 'tidy_acme'] as const) set(k, () => r.data.bool(k));
          const atLeastOne = (k: 'safety_buffer' | 'issuer_safety_buffer' | 'revocation_queue_safety_buffer' | 'acme_account_safety_buffer') =>
            set(k, () => {
              const v = r.data.int(k);
              if (v < 1) throw new UserError(`given ${k} must be at least one second; got: ${v}`);
              return v;
            });
          atLeastOne('safety_buffer');
          atLeastOne('issuer_safety_buffer');
          atLeastOne('revocation_queue_safety_buffer');
          atLeastOne('acme_account_safety_buffer');
          if (r.data.has('pause_duration')) c.pause_duration_ms = pauseMs(r.data.str('pause_duration'));
          if (c.enabled && !TARGETS.some((t) => c[t]))
            throw new UserError(
              `Auto-tidy enabled but no tidy operations were requested. Enable at least one tidy operation to be run (${TARGETS.join(' / ')}).`,
            );
          set('maintain_stored_certificate_counts', () => r.data.bool('maintain_stored_certificate_counts'));
          set('publish_stored_certificate_count_metrics', () => r.data.bool('publish_stored_certificate_count_metrics'));
          if (c.publish_stored_certificate_count_metrics && !c.maintain_stored_certificate_counts)
            throw new UserError(
              'Can not publish a running storage metrics count to metrics without first maintaining that count.  Enable `maintain_stored_certificate_counts` to enable `publish_stored_certificate_count_metrics`.',
            );
          await putJson(r.storage, AUTO_TIDY_KEY, c);
          return { data: configData(c) };
        },
      },
    },
  ];
}
