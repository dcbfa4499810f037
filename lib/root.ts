/**
 * The project's root directory (package.json, Pulumi.yaml, node_modules, lib/…/classify.py), found
 * the same way from the TypeScript sources (lib/root.ts, run through tsx) and from their compiled
 * copy (build/lib/root.js, which bin/thinlayer.js prefers): `__dirname` alone would point into build/.
 */
import * as path from "node:path";

const above = path.resolve(__dirname, "..");

/**
 * The directory holding lib/, bin/ and package.json: above lib/, or above build/ for the compiled
 * copy (this file is then build/lib/root.js). Decided by the file's own extension, not by a
 * directory's name, so a checkout that is itself called "build" is found too.
 */
export const PROJECT_ROOT = path.extname(__filename) === ".js" ? path.dirname(above) : above;

/** A non-TypeScript file shipped in the sources (tsc does not copy them into build/). */
export function sourceAsset(...parts: string[]): string {
    return path.join(PROJECT_ROOT, ...parts);
}
