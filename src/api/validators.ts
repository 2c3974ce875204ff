// The compilers fastify validates requests with (its own @fastify/ajv-compiler), loaded and run when a route first
// takes a request instead of while the server starts. Loading ajv and compiling the documents' schemas took 60-80 ms
// of CPU between the mount and the API socket (a --cpu-prof of a dedicated daemon; BENCHMARKS.md run AE), and the
// snapshotter waits for that socket's RUNNING before it uses the mount (snapshotter-contract.md 3.3). Each route's
// schema is compiled once, on its first request: the same validation, errors and messages as fastify's default.
import { createRequire } from 'node:module';
import type { FastifySchemaCompiler, FastifyServerOptions } from 'fastify';

type ValidatorFactory = (externalSchemas: unknown, options: unknown) => FastifySchemaCompiler<unknown>;
type SerializerFactory = (externalSchemas: unknown, options: unknown) => (route: unknown) => (data: unknown) => string;

// fastify's own dependencies, resolved from fastify's folder as fastify itself would resolve them
const requireFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));

/**
 * fastify's `schemaController` option that defers both compilers, and `compileAll` for a daemon with time to spare:
 * a shared daemon compiles them while idle, before its first POST /api/v1/mount (whose body is validated) arrives.
 */
export class LazySchemas {
  private readonly pending = new Set<() => void>();

  readonly controller: NonNullable<FastifyServerOptions['schemaController']> = {
    compilersFactory: {
      buildValidator: this.validatorFactory() as never,
      buildSerializer: lazySerializerFactory() as never,
    },
  };

  /** Compiles every route's validator now. */
  compileAll(): void {
    for (const compile of this.pending) compile();
  }

  private validatorFactory(): ValidatorFactory {
    return (externalSchemas, options) => {
      let compile: FastifySchemaCompiler<unknown> | undefined;
      const compiler = () => (compile ??= (requireFastify('@fastify/ajv-compiler') as () => ValidatorFactory)()(externalSchemas, options));
      return (route) => {
        let validate: ReturnType<FastifySchemaCompiler<unknown>> | undefined;
        const prepare = () => {
          validate ??= compiler()(route);
          this.pending.delete(prepare);
          return validate;
        };
        this.pending.add(prepare);
        const lazy = ((data: unknown) => {
          const v = validate ?? prepare();
          const result = v(data);
          // fastify reads a failed validation's errors from the function it was given
          lazy.errors = v.errors;
          return result;
        }) as ReturnType<FastifySchemaCompiler<unknown>>;
        return lazy;
      };
    };
  }
}

/** The serializer compiler is only needed by a route with a response schema (none today): loaded when asked for. */
function lazySerializerFactory(): SerializerFactory {
  return (externalSchemas, options) => (requireFastify('@fastify/fast-json-stringify-compiler') as () => SerializerFactory)()(externalSchemas, options);
}
