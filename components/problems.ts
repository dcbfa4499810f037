/**
 * The one error shape for bad component args (lib/errors.ts): input, bad value, what is allowed, the
 * fix. Validators collect messages; the component throws them as one pulumi.ResourceError.
 */
import { inputError } from "../lib/errors";

/** Appends the message for one bad arg to `problems` when `ok` is false. */
export function check(problems: string[], ok: boolean, input: string, value: unknown, allowed: string, fix: string): void {
    if (!ok) problems.push(inputError({ input, value: JSON.stringify(value), allowed, fix }).message);
}

/** True for an integer within [min, max]. */
export function intIn(v: number, min: number, max: number): boolean {
    return Number.isInteger(v) && v >= min && v <= max;
}

/** A 64-hex content hash. */
export const HASH_RE = /^[a-f0-9]{64}$/;
