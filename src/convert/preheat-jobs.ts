// Following preheat jobs to their end (spec p2p-seeds.md 1: poll a job until SUCCESS or FAILURE; 2: WAITING ->
// RUNNING -> SUCCESS | FAILED): every unfinished job is polled each round until all are finished or the deadline
// passes. A failed job, or any job still unfinished at the deadline, makes the whole preheat fail with one line
// naming each such job, what it preheats, and the manager's error. A refused token or a job the manager no longer
// knows ends the wait at once; other polling failures (a manager restarting) are retried a few times in a row.
import { ManagerError, type DragonflyManager, type JobStatus, type PreheatRequest } from './dragonfly-preheat.js';

/** One preheat to run: what it is called in messages (`blob sha256:...`) and its request. */
export interface PreheatItem {
  label: string;
  request: PreheatRequest;
}

export interface PreheatResult {
  label: string;
  status: JobStatus;
}

export interface PreheatWaitOptions {
  /** the whole preheat, creating the jobs included (ms) */
  timeoutMs: number;
  /** between polling rounds (ms) */
  intervalMs: number;
  /** every state a job is seen in for the first time */
  onState?: (item: PreheatItem, status: JobStatus) => void;
}

/** polling failures in a row that end the wait (a manager that is down stays down) */
const MAX_POLL_FAILURES = 3;

export class PreheatFailed extends Error {
  constructor(message: string, readonly results: PreheatResult[]) {
    super(message);
    this.name = 'PreheatFailed';
  }
}

/** Aborted at the deadline, with a reason we recognise. */
class Deadline extends Error {}

/**
 * Creates one job per item, then polls them all until each is SUCCESS or FAILURE. Resolves with every job's final
 * status when all succeeded; rejects with PreheatFailed (failures, timeout) or the ManagerError that stopped it.
 */
export async function runPreheat(manager: DragonflyManager, items: PreheatItem[], o: PreheatWaitOptions): Promise<PreheatResult[]> {
  const deadlineAt = Date.now() + o.timeoutMs;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Deadline()), o.timeoutMs);
  const jobs: Array<{ item: PreheatItem; status?: JobStatus }> = items.map((item) => ({ item }));
  const seen = (job: { item: PreheatItem; status?: JobStatus }, s: JobStatus) => {
    if (job.status?.raw !== s.raw) o.onState?.(job.item, s);
    job.status = s;
  };
  try {
    for (const job of jobs) seen(job, await manager.create(job.item.request, ctl.signal));
    let failures = 0;
    for (;;) {
      const open = jobs.filter((j) => j.status!.state !== 'SUCCESS' && j.status!.state !== 'FAILURE');
      if (open.length === 0) break;
      await pause(Math.min(o.intervalMs, Math.max(0, deadlineAt - Date.now())), ctl.signal);
      try {
        for (const job of open) seen(job, await manager.status(job.status!.id, ctl.signal));
        failures = 0;
      } catch (e) {
        if (!(e instanceof ManagerError) || e.kind === 'auth' || e.status === 404 || ++failures >= MAX_POLL_FAILURES) throw e;
      }
    }
  } catch (e) {
    // once the deadline has passed, whatever broke off (a pause, a request in flight) did so because of it
    if (!(e instanceof Deadline) && !ctl.signal.aborted) throw e;
    const created = jobs.filter((j) => j.status);
    const waiting = jobs.filter((j) => !j.status || (j.status.state !== 'SUCCESS' && j.status.state !== 'FAILURE'));
    const what = waiting.map((j) => (j.status ? `job ${j.status.id} (${j.item.label}) still ${j.status.raw}` : `${j.item.label} (no job created yet)`));
    throw new PreheatFailed(
      `preheat timed out after ${o.timeoutMs / 1000} s: ${what.join('; ')}`,
      created.map((j) => ({ label: j.item.label, status: j.status! })),
    );
  } finally {
    clearTimeout(timer);
  }
  const results = jobs.map((j) => ({ label: j.item.label, status: j.status! }));
  const failed = results.filter((r) => r.status.state === 'FAILURE');
  if (failed.length > 0) {
    throw new PreheatFailed(
      `preheat failed: ${failed.map((r) => `job ${r.status.id} (${r.label}) ended in ${r.status.raw}: ${r.status.error ?? 'no error text'}`).join('; ')}`,
      results,
    );
  }
  return results;
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
