/**
 * Shared types of the core: the data that flows from the hashing modules up to the plan. Lower
 * modules (filehash, inputs, snapshot, layer, daemonless) take their types from here, never from
 * the orchestrator (plan.ts), so no import runs upward.
 */

/** One input file of an image (or of the migrations hash). */
export interface InputFile {
    /** POSIX path relative to the build context (or appDir for migrations). */
    path: string;
    size: number;
    executable: boolean;
    /** sha256 of the content (of the link target text for a symlink). */
    sha256: string;
}
