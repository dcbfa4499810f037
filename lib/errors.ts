/**
 * Errors a user can act on. Every message names the input, the bad value, what is allowed and the
 * fix (AWS CDK's guideline), so callers never have to guess which knob to turn.
 */
export class ThinlayerError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "ThinlayerError";
    }
}

export interface InputProblem {
    /** What was read: a config key, a file path, a Dockerfile line. */
    input: string;
    /** The offending value, already rendered (never a secret). */
    value: string;
    /** What would have been accepted. */
    allowed: string;
    /** What to do about it. */
    fix: string;
}

/** Builds the one error shape used for bad input everywhere. */
export function inputError(p: InputProblem): ThinlayerError {
    return new ThinlayerError(`${p.input}: got ${p.value}; expected ${p.allowed}. Fix: ${p.fix}`);
}
