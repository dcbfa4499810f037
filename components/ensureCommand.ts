/**
 * The bridge from a planned image to the `thinlayer ensure` command a local.Command runs, and back
 * from the command's stdout to an image ref. Pure functions: the tests run the exact command line
 * for real against a test registry.
 */
import * as path from "node:path";
import { ensureCommandArgs, type EnsureOptions, type EnsureResult } from "../lib/build/ensure";
import { ThinlayerError } from "../lib/errors";
import { parseEcrHost, parseImageRef, parseRepository } from "../lib/oci/reference";
import { EXTRA_CA_ENV } from "../lib/oci/trust";
import { DIGEST } from "../lib/rules";

/** POSIX shell single-quoting; plain words (letters, digits, @%+=:,./-) stay bare for readability. */
export function shellQuote(arg: string): string {
    if (arg !== "" && /^[A-Za-z0-9@%+=:,./_-]+$/.test(arg)) return arg;
    return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * The shell command line of one ensure run, to be run in `projectDir`. Paths are written relative
 * to `projectDir`, so the command line is the same in every checkout. (The Command's `dir` is the
 * absolute project path, so a deploy from another path still reruns ensure: it reuses the existing
 * tags, no build, same digests, no rollout.)
 */
export function ensureCommandLine(projectDir: string, opts: EnsureOptions): string {
    const rel = (p: string) => path.relative(projectDir, p).split(path.sep).join("/") || ".";
    const argv = ensureCommandArgs({ ...opts, context: rel(opts.context), dockerfile: rel(opts.dockerfile), json: true });
    return [...caHandover(opts), ...["node", "bin/thinlayer.js", ...argv].map(shellQuote)].join(" ");
}

/**
 * The command line's leading assignments: NODE_EXTRA_CA_CERTS handed over as
 * THINLAYER_EXTRA_CA_CERTS and blanked, so Node's start-up does not parse the certificates and the
 * CLI parses them on its first HTTPS request, if it makes one (lib/oci/trust.ts). None when the
 * registry (or the base's) is ECR: there the AWS SDK, which trusts what Node read at start-up, is
 * called. Words for the shell to expand, so never quoted.
 */
function caHandover(opts: EnsureOptions): string[] {
    const hosts: string[] = [];
    try {
        hosts.push(parseRepository(opts.repository).host);
        if (opts.baseRef !== undefined) hosts.push(parseImageRef(opts.baseRef, "--base-ref").host);
    } catch {
        return []; // the CLI reports the bad value; nothing is handed over meanwhile
    }
    if (hosts.some((h) => parseEcrHost(h) !== undefined)) return [];
    return [`${EXTRA_CA_ENV}=\${NODE_EXTRA_CA_CERTS-}`, "NODE_EXTRA_CA_CERTS="];
}

/**
 * Parses the one JSON object `ensure --json` prints and checks it is the image that was asked for:
 * the expected repository and tag, and a digest ref. Throws a ThinlayerError naming what differs.
 */
export function parseEnsureOutput(stdout: string, expect: { repository: string; tag: string }): EnsureResult {
    let parsed: unknown;
    try {
        parsed = JSON.parse(stdout.trim());
    } catch {
        throw new ThinlayerError(
            `thinlayer ensure stdout: got ${JSON.stringify(stdout.slice(0, 200))}; expected exactly one JSON object. Fix: run the command by hand with --json and check that nothing else writes to stdout`,
        );
    }
    const r = parsed as Partial<EnsureResult>;
    const refOk = typeof r.ref === "string" && r.ref === `${expect.repository}@${r.digest}` && DIGEST.test(String(r.digest));
    if (!refOk || r.tag !== expect.tag || (r.action !== "built" && r.action !== "reused")) {
        throw new ThinlayerError(
            `thinlayer ensure result: got ref ${JSON.stringify(r.ref)}, tag ${JSON.stringify(r.tag)}, action ${JSON.stringify(r.action)}; ` +
                `expected ref ${expect.repository}@sha256:<64 hex>, tag ${expect.tag}, action built|reused. Fix: the CLI and the program disagree; rerun pulumi up, and report the output if it repeats`,
        );
    }
    return r as EnsureResult;
}
