// nydusd: serves RAFS images over FUSE. Argument errors exit 2, start-up errors exit 1 with `Error: ...`,
// SIGTERM/SIGINT unmount and exit 0, SIGUSR2 logs the backend and cache counters as `metrics: {json}`.
import type { ApiServer } from '../api/server.js';
import type { PrometheusServer } from '../metrics/prometheus-server.js';
import { parseArgs, UsageError, USAGE } from '../service/args.js';
import type { FuseDaemon } from '../service/daemon.js';
import { Logger } from '../service/logger.js';
import { buildInfo, versionText } from '../service/version.js';


async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (args.version) {
    process.stdout.write(versionText('nydusd'));
    return 0;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.mode === 'singleton') {
    process.stderr.write('Error: the singleton (fscache) mode is out of scope for this nydusd\n');
    return 1;
  }
  let log: Logger;
  try {
    log = new Logger(args.logLevel, args.logFile);
  } catch (err) {
    process.stderr.write(`Error: ${(err as Error).message}\n`);
    return 1;
  }
  process.on('SIGPIPE', () => undefined);
  // the metrics count every request of every instance; they are loaded only when someone can read them (API or
  // Prometheus endpoint), like the API's own modules (start-up time)
  const metrics = args.apisock || args.metricsAddress ? await import('../metrics/registry.js') : undefined;
  // the daemon core only now: --version and --help answer without loading it (a third of their time)
  const { FuseDaemon } = await import('../service/daemon.js');
  const daemon: FuseDaemon = new FuseDaemon(args, log, metrics?.processMetrics.hooks());
  let api: ApiServer | undefined;
  let prometheus: PrometheusServer | undefined;
  let signalled = false;
  const onSignal = (sig: string) => {
    if (signalled) return;
    signalled = true;
    log.info(`received ${sig}, unmounting`);
    // spec 1.11: the API server stops and removes its socket, then the daemon stops (and unmounts)
    Promise.all([api?.close(), prometheus?.close()]).then(() => daemon.shutdown()).then(
      () => daemon.exit(0),
      (err) => {
        log.error(`shutdown: ${(err as Error).message}`);
        daemon.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGUSR2', () => {
    daemon.metrics().then(
      (m) => log.report(`metrics: ${m}`),
      (err) => log.warn(`metrics: ${(err as Error).message}`),
    );
  });
  // as the reference does at start; logged once the signal handlers are in place, so from here on SIGTERM is ours
  const b = buildInfo();
  log.info(`Program Version: ${b.package_ver}, Git Commit: ${b.git_commit}, Build Time: ${b.build_time}, Profile: ${b.profile}, Rustc Version: ${b.rustc}`);
  try {
    // a socket another daemon serves is refused before anything is mounted (checked again when listening)
    if (args.apisock) await (await import('../api/socket-path.js')).prepareSocketPath(args.apisock, false);
    await daemon.start();
    // spec 1.9 step 8: the socket appears only now, with the mount in place and the state RUNNING, so the
    // snapshotter's first GET sees the final state. The API's modules (fastify) load only for a daemon that
    // serves the API, and only once it is mounted: loaded during the mount they delayed its first answer by their
    // whole time and brought the socket no sooner (measured: mounted 0.35 s against 0.15 s, socket 0.34-0.35 s both)
    if (args.apisock && !signalled) {
      const { ApiServer } = await import('../api/server.js');
      api = await ApiServer.start({
        socketPath: args.apisock,
        mode: args.apisockMode,
        log,
        context: {
          daemon,
          exitKeepingMount: () => {
            if (signalled) return;
            signalled = true;
            log.info('exit requested through the API: leaving the mount in place');
            Promise.all([api?.close(), prometheus?.close()]).then(() => daemon.exitKeepingMount()).then(
              () => daemon.exit(0),
              (err) => {
                log.error(`exit: ${(err as Error).message}`);
                daemon.exit(1);
              },
            );
          },
        },
      });
      // a signal while the socket was being created: it must not outlive the daemon
      const server = api;
      if (signalled) await server.close();
      // the first mount's body is validated: its schema is compiled while idle too
      else if (!args.bootstrap) daemon.preloadImageModules(() => server.compileSchemas());
    }
    // our extension: Prometheus text on --metrics-address, once the daemon is RUNNING
    if (args.metricsAddress && metrics && !signalled) {
      const [{ PrometheusServer }, { prometheusRegistry }] = await Promise.all([
        import('../metrics/prometheus-server.js'),
        import('../metrics/prometheus.js'),
      ]);
      const registry = prometheusRegistry(metrics.processMetrics, () => daemon.fuseSession?.inflight() ?? []);
      prometheus = await PrometheusServer.start(args.metricsAddress, registry);
      const a = prometheus.address;
      log.info(`Prometheus metrics at http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`);
      if (signalled) await prometheus.close();
    }
  } catch (err) {
    if (args.logFile) log.error((err as Error).message);
    process.stderr.write(`Error: ${(err as Error).message}\n`);
    // e.g. the metrics address is taken: the API socket, already serving, goes with the daemon
    await api?.close().catch(() => undefined);
    await daemon.shutdown().catch(() => undefined);
    return 1;
  }
  return -1; // keep serving
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`Error: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
