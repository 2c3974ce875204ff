import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DaemonStateMachine, UnexpectedEventError, type DaemonEvent, type DaemonState } from '../../src/service/state-machine.js';

const EVENTS: DaemonEvent[] = ['Mount', 'Takeover', 'Start', 'Stop', 'Exit'];

/** A machine driven into `state` through accepted events. */
async function machineIn(state: DaemonState): Promise<DaemonStateMachine> {
  const m = new DaemonStateMachine();
  const path: Record<DaemonState, DaemonEvent[]> = { INIT: [], READY: ['Mount'], RUNNING: ['Mount', 'Start'], STOPPED: ['Stop'] };
  for (const e of path[state]) await m.fire(e);
  assert.equal(m.state, state);
  return m;
}

test('every (state, event) pair follows the table of nydusd-runtime.md 1.10; the rest is rejected and changes nothing', async () => {
  const expected: Record<DaemonState, Partial<Record<DaemonEvent, DaemonState>>> = {
    INIT: { Mount: 'READY', Takeover: 'READY', Stop: 'STOPPED' },
    READY: { Start: 'RUNNING', Stop: 'STOPPED', Exit: 'STOPPED' },
    RUNNING: { Stop: 'READY' },
    STOPPED: {},
  };
  for (const state of Object.keys(expected) as DaemonState[]) {
    for (const event of EVENTS) {
      const m = await machineIn(state);
      const next = expected[state][event];
      assert.equal(m.accepts(event), next !== undefined, `${state} accepts ${event}`);
      if (next) {
        assert.equal(await m.fire(event), next, `${state} --${event}-->`);
        assert.equal(m.state, next);
      } else {
        await assert.rejects(m.fire(event), (e: unknown) => e instanceof UnexpectedEventError && e.event === event && e.state === state);
        assert.equal(m.state, state, `${state} unchanged after a rejected ${event}`);
      }
    }
  }
});

test('events run one at a time in order, each after the previous action finished; a failed action keeps the state', async () => {
  const m = new DaemonStateMachine();
  const seen: string[] = [];
  m.onChange((s, e) => seen.push(`${e}->${s}`));
  let release!: () => void;
  const slow = new Promise<void>((r) => (release = r));
  const mount = m.fire('Mount', async () => {
    seen.push('mounting');
    await slow;
    seen.push('mounted');
  });
  // queued behind Mount: Start is only valid once Mount is done
  const start = m.fire('Start', () => seen.push('starting'));
  await new Promise((r) => setImmediate(r));
  assert.equal(m.state, 'INIT');
  release();
  assert.equal(await mount, 'READY');
  assert.equal(await start, 'RUNNING');
  assert.deepEqual(seen, ['mounting', 'mounted', 'Mount->READY', 'starting', 'Start->RUNNING']);

  await assert.rejects(m.fire('Stop', () => { throw new Error('workers would not stop'); }), /workers would not stop/);
  assert.equal(m.state, 'RUNNING');
  assert.equal(await m.fire('Stop'), 'READY');
});
