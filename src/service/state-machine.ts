// The daemon's one state machine (spec nydusd-runtime.md 1.10): the CLI, the API, metrics and failover all read
// `state` from here and change it only through `fire`. Events are handled one at a time, in arrival order, and the
// caller waits for the action that goes with the transition.
//
// States are the ones the reference reports: INIT, READY, RUNNING, STOPPED. (Its OpenAPI document also lists
// UPGRADING and INTERRUPTED; the spec notes that the daemon never reports them, and no client knows them.) Unlike
// the reference, a failed action leaves the state where it was, so what is reported is what is true (nydusd-runtime.md 1.10 quirk).

export type DaemonState = 'INIT' | 'READY' | 'RUNNING' | 'STOPPED';
export type DaemonEvent = 'Mount' | 'Takeover' | 'Start' | 'Stop' | 'Exit';

const TRANSITIONS: Record<DaemonState, Partial<Record<DaemonEvent, DaemonState>>> = {
  INIT: { Mount: 'READY', Takeover: 'READY', Stop: 'STOPPED' },
  READY: { Start: 'RUNNING', Stop: 'STOPPED', Exit: 'STOPPED' },
  RUNNING: { Stop: 'READY' },
  STOPPED: {},
};

/** An event the current state does not accept: the API answers it with 400 (nydusd-runtime.md 3.3). */
export class UnexpectedEventError extends Error {
  constructor(
    readonly event: DaemonEvent,
    readonly state: DaemonState,
  ) {
    super(`unexpected state machine transition event ${event} in state ${state}`);
    this.name = 'UnexpectedEventError';
  }
}

export class DaemonStateMachine {
  private current: DaemonState = 'INIT';
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: ((state: DaemonState, event: DaemonEvent) => void)[] = [];

  get state(): DaemonState {
    return this.current;
  }

  /** Whether `event` would be accepted now (nothing queued ahead of it considered). */
  accepts(event: DaemonEvent): boolean {
    return TRANSITIONS[this.current][event] !== undefined;
  }

  /** Called after every transition, with the new state. */
  onChange(listener: (state: DaemonState, event: DaemonEvent) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Queues `event`; once every earlier event is done, checks it against the state, runs `action` and then moves to
   * the next state. Rejects with UnexpectedEventError (state unchanged) or with the action's error (state unchanged).
   */
  fire(event: DaemonEvent, action: () => unknown = () => undefined): Promise<DaemonState> {
    const run = this.queue.then(async () => {
      const next = TRANSITIONS[this.current][event];
      if (next === undefined) throw new UnexpectedEventError(event, this.current);
      await action();
      this.current = next;
      for (const l of this.listeners) l(next, event);
      return next;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}
