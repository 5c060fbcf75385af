/**
 * Paths of the library's own compiled files (worker entries), for `new Worker` and piscina.
 *
 * This is the ES module build's version. The CommonJS build (dist/cjs, made by
 * scripts/build-cjs.mjs) compiles `lib-file-cjs.cts` in its place: `import.meta` is a syntax
 * error in a CommonJS file, and `__dirname` does not exist in an ES module, so the one line that
 * knows where the compiled files are has a version per module system. Everything else is
 * compiled twice from the same source, so each build starts its own build's workers.
 */
import { fileURLToPath } from 'node:url';

/** Absolute path of `rel`, relative to the compiled `runtime/` folder (dist/runtime or dist/cjs/runtime). */
export function libFile(rel: string): string {
  return fileURLToPath(new URL(rel, import.meta.url));
}
