/**
 * The CommonJS build's `lib-file.ts` (scripts/build-cjs.mjs compiles this file under that name;
 * the ES module build never sees it). See lib-file.ts.
 */
import { join } from 'node:path';

/** Absolute path of `rel`, relative to the compiled `runtime/` folder (dist/runtime or dist/cjs/runtime). */
export function libFile(rel: string): string {
  return join(__dirname, rel);
}
