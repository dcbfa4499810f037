/**
 * The input record of one image, computed from the checkout with the functions the plan uses
 * (lib/plan.ts computeBaseInputs / computeAppInputs), plus the Dockerfile's FROM references,
 * thinlayer's version and the git state. Used by ensure (to attest) and verify (to compare).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";
import { analyzeDockerfile, readDockerfile } from "../dockerfile/analyze";
import { BASE_IMAGE_ARG, type InputsArgs } from "../hashing/inputs";
import { appTag, baseTag, computeAppInputs, computeBaseInputs, type InputsResult } from "../plan";
import { PROJECT_ROOT } from "../root";
import { createHash } from "node:crypto";
import type { InputRecord } from "./statement";

export interface RecordArgs extends InputsArgs {
    /** App only: host/repo@sha256:… */
    baseRef?: string;
    /** Already computed inputs for exactly these args (ensure has them). */
    inputs?: InputsResult;
    /** gitSource(contextDir), when the caller started it earlier (ensure: at its start, so git runs alongside the build). */
    source?: Promise<InputRecord["source"]>;
}

let version: string | undefined;
/** thinlayer's version from package.json. */
function thinlayerVersion(): string {
    version ??= (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as { version?: string }).version ?? "0.0.0";
    return version;
}

const execFileAsync = promisify(execFile);

/** The commit when the work tree holding `dir` is clean, `{ dirty: true }` when not, undefined outside git. Never throws. */
export async function gitSource(dir: string): Promise<InputRecord["source"]> {
    const git = async (args: string[]) => (await execFileAsync("git", ["-C", dir, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })).stdout;
    let commit: string;
    try {
        commit = (await git(["rev-parse", "--verify", "HEAD"])).trim();
    } catch {
        return undefined; // not a git work tree (or no commit yet, or no git)
    }
    try {
        return (await git(["status", "--porcelain"])).trim() === "" ? { commit } : { dirty: true };
    } catch {
        return { dirty: true }; // a work tree git cannot read the state of: not a clean commit
    }
}

/** The record of one image's inputs as the checkout gives them now. */
export async function computeRecord(a: RecordArgs): Promise<InputRecord> {
    const contextDir = path.resolve(a.contextDir);
    const dockerfile = path.resolve(contextDir, a.dockerfile);
    const buildArgs = { ...a.buildArgs };
    const sourceP = a.source ?? gitSource(contextDir); // git runs while the inputs are hashed
    let inputs = a.inputs;
    if (a.role === "app") {
        if (a.baseHash === undefined || a.baseRef === undefined) throw new Error("an app record needs baseHash and baseRef");
        delete buildArgs[BASE_IMAGE_ARG];
        inputs ??= await computeAppInputs({ contextDir, dockerfile, buildArgs: a.buildArgs, platform: a.platform, baseHash: a.baseHash });
    } else {
        inputs ??= await computeBaseInputs({ contextDir, dockerfile, buildArgs: a.buildArgs, platform: a.platform });
    }
    const text = readDockerfile(dockerfile);
    const effective = a.role === "app" ? { ...a.buildArgs, [BASE_IMAGE_ARG]: a.baseRef as string } : a.buildArgs;
    const from = analyzeDockerfile(text, dockerfile, effective).fromRefs;
    const sortedArgs: Record<string, string> = {};
    for (const k of Object.keys(buildArgs).sort()) sortedArgs[k] = buildArgs[k];
    const baseDigest = a.baseRef?.split("@")[1] ?? "";
    const source = await sourceP;
    return {
        role: a.role,
        hash: inputs.hash,
        tag: a.role === "app" ? appTag(inputs.hash) : baseTag(inputs.hash),
        platform: a.platform,
        dockerfile: { path: path.relative(contextDir, dockerfile).split(path.sep).join("/"), sha256: createHash("sha256").update(text, "utf8").digest("hex") },
        buildArgs: sortedArgs,
        from,
        ...(a.role === "app" ? { base: { hash: a.baseHash as string, ref: a.baseRef as string, digest: baseDigest } } : {}),
        files: inputs.files.map((f) => ({ path: f.path, sha256: f.sha256, executable: f.executable })),
        thinlayer: { version: thinlayerVersion() },
        ...(source !== undefined ? { source } : {}),
    };
}
