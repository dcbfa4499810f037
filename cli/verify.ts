/**
 * `thinlayer verify`: is what the registry holds exactly this checkout? Finds the image's
 * provenance attestation (lib/provenance), recomputes the input record from the checkout with the
 * plan's functions, and compares. Exit 0 when they are the same, 1 when not (naming the files and
 * fields that differ, or saying no attestation was found), 2 on usage errors.
 */
import type { KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { loadStackConfig } from "../lib/config";
import { inputError } from "../lib/errors";
import { findAttestations, type FoundAttestation } from "../lib/provenance/attach";
import { loadPrivateKey, loadPublicKey } from "../lib/provenance/dsse";
import { computeRecord, type RecordArgs } from "../lib/provenance/record";
import { diffRecords, formatDiff, isSame, type InputRecord, type RecordDiff } from "../lib/provenance/statement";
import { RegistryClient } from "../lib/oci/client";
import { parseImageRef } from "../lib/oci/reference";
import { PROJECT_ROOT } from "../lib/root";
import { createPublicKey } from "node:crypto";
import { pulumi } from "./rollback";

const USAGE = `usage:
  thinlayer verify --stack <stack> [--outputs-file <file.json>] [--project <dir>] [--public-key <pem>] [--json]
  thinlayer verify --image <host/repo@sha256:…|host/repo:tag> [--context <dir>] [--public-key <pem>] [--json]

Fetches the provenance attestation attached to the image (the OCI referrers API, or the
sha256-<hex> tag where the registry has none), recomputes the inputs from this checkout and
compares them: every input file (path, sha256, executable bit), the Dockerfile, the build args,
the platform, the FROM references, the base hash. Exit 0 when the same, 1 when not.
--stack: the stack's baseImageRef and appImageRef outputs (\`pulumi stack output --json\`, or
  --outputs-file with that JSON), the checkout's inputs from the stack config.
--image: one image; its inputs recomputed with the recorded Dockerfile, build args and platform
  in --context (default: the current directory).
--public-key <pem>: accept only attestations signed with this key (DSSE; Ed25519 or ECDSA P-256).
  --signing-key <pem> or $THINLAYER_SIGNING_KEY (a path) give their public half.`;

/** What to check for one image: where it is, and how to recompute its record from the checkout. */
interface Target {
    label: string;
    ref: string;
    /** undefined: take the recorded parameters (--image). */
    recompute?: RecordArgs;
}

export interface ImageVerdict {
    label: string;
    ref: string;
    same: boolean;
    attestation?: string;
    signed?: boolean;
    diff?: RecordDiff;
    problem?: string;
    source?: InputRecord["source"];
}

export async function run(argv: string[]): Promise<number> {
    let values;
    try {
        ({ values } = parseArgs({
            args: argv,
            strict: true,
            options: {
                stack: { type: "string" },
                image: { type: "string" },
                context: { type: "string" },
                project: { type: "string" },
                "outputs-file": { type: "string" },
                "public-key": { type: "string" },
                "signing-key": { type: "string" },
                json: { type: "boolean", default: false },
                help: { type: "boolean", short: "h", default: false },
            },
        }));
    } catch (e) {
        process.stderr.write(`thinlayer verify: ${(e as Error).message}\n\n${USAGE}\n`);
        return 2;
    }
    if (values.help) {
        process.stdout.write(USAGE + "\n");
        return 0;
    }
    if ((values.stack === undefined) === (values.image === undefined)) {
        process.stderr.write(`thinlayer verify: pass exactly one of --stack <stack> or --image <ref>\n\n${USAGE}\n`);
        return 2;
    }
    const key = publicKeyOf(values["public-key"], values["signing-key"]);
    const targets =
        values.stack !== undefined
            ? await stackTargets(values.stack, path.resolve(values.project ?? PROJECT_ROOT), values["outputs-file"])
            : [{ label: "image", ref: values.image as string }];
    const contextDir = path.resolve(values.context ?? process.cwd());
    const verdicts: ImageVerdict[] = [];
    for (const t of targets) verdicts.push(await verifyImage(t, contextDir, key));
    const ok = verdicts.every((v) => v.same);
    if (values.json) process.stdout.write(JSON.stringify({ ok, images: verdicts }) + "\n");
    else process.stdout.write(formatVerdicts(verdicts) + "\n");
    return ok ? 0 : 1;
}

function publicKeyOf(pub: string | undefined, priv: string | undefined): KeyObject | undefined {
    if (pub !== undefined) return loadPublicKey(pub);
    if (priv !== undefined) return createPublicKey(loadPrivateKey(priv, "--signing-key"));
    const env = process.env.THINLAYER_SIGNING_KEY;
    if (env) return createPublicKey(loadPrivateKey(env, "THINLAYER_SIGNING_KEY"));
    return undefined;
}

/** The stack's two images and how the checkout gives their records (as computePlan does). */
async function stackTargets(stack: string, projectDir: string, outputsFile: string | undefined): Promise<Target[]> {
    const cfg = loadStackConfig(projectDir, stack);
    let text: string;
    if (outputsFile !== undefined) {
        try {
            text = fs.readFileSync(outputsFile, "utf8");
        } catch (e) {
            throw inputError({
                input: "--outputs-file",
                value: JSON.stringify(outputsFile),
                allowed: "a readable file with `pulumi stack output --json` output",
                fix: `check the path (${(e as NodeJS.ErrnoException).code ?? ""})`,
            });
        }
    } else {
        text = await pulumi(["stack", "output", "--json", "--stack", stack], projectDir);
    }
    const outputs = JSON.parse(text) as Record<string, unknown>;
    const need = (k: string): string => {
        const v = outputs[k];
        if (typeof v !== "string" || v === "")
            throw inputError({
                input: `stack output ${k}`,
                value: JSON.stringify(v ?? "(missing)"),
                allowed: "host/repo@sha256:… (set by pulumi up)",
                fix: `deploy the stack first (pulumi up --stack ${stack}), or pass --image <ref>`,
            });
        return v;
    };
    const baseImageRef = need("baseImageRef");
    const appImageRef = need("appImageRef");
    const base: RecordArgs = { role: "base", contextDir: cfg.appDir, dockerfile: cfg.baseDockerfile, buildArgs: cfg.buildArgs, platform: cfg.platform };
    const baseRecord = await computeRecord(base);
    return [
        { label: "base", ref: baseImageRef, recompute: base },
        {
            label: "app",
            ref: appImageRef,
            recompute: {
                role: "app",
                contextDir: cfg.appDir,
                dockerfile: cfg.appDockerfile,
                buildArgs: {},
                platform: cfg.platform,
                baseHash: baseRecord.hash,
                baseRef: baseImageRef,
            },
        },
    ];
}

/** Verifies one image: its attestations against the checkout; the closest one decides. */
async function verifyImage(t: Target, contextDir: string, key?: KeyObject): Promise<ImageVerdict> {
    const ref = parseImageRef(t.ref, t.label === "image" ? "--image" : `${t.label}ImageRef`);
    const client = new RegistryClient(ref.host);
    let digest = ref.digest;
    if (digest === undefined) {
        const head = await client.headManifest(ref.repository, ref.tag ?? "latest");
        if (!head) return { label: t.label, ref: t.ref, same: false, problem: `${t.ref} is not in the registry` };
        digest = head.digest;
    }
    const found = await findAttestations(client, ref.repository, digest, key);
    const readable = found.filter((f): f is FoundAttestation & { statement: NonNullable<FoundAttestation["statement"]> } => f.statement !== undefined);
    if (readable.length === 0) {
        const why =
            found.length === 0
                ? `no provenance attestation is attached to ${ref.host}/${ref.repository}@${digest} (was it pushed by thinlayer ensure?)`
                : found.map((f) => `attestation ${f.digest}: ${f.error ?? "unreadable"}`).join("; ");
        return { label: t.label, ref: t.ref, same: false, problem: why };
    }
    let best: ImageVerdict | undefined;
    for (const f of readable) {
        const attested = f.statement.predicate;
        const args: RecordArgs = t.recompute ?? {
            role: attested.role,
            contextDir,
            dockerfile: path.resolve(contextDir, attested.dockerfile.path),
            buildArgs: attested.buildArgs,
            platform: attested.platform,
            baseHash: attested.base?.hash,
            baseRef: attested.base?.ref,
        };
        let diff: RecordDiff;
        try {
            diff = diffRecords(attested, await computeRecord(args));
        } catch (e) {
            return {
                label: t.label,
                ref: t.ref,
                same: false,
                attestation: f.digest,
                problem: `cannot recompute the inputs from the checkout: ${(e as Error).message}`,
            };
        }
        const v: ImageVerdict = {
            label: t.label,
            ref: t.ref,
            same: isSame(diff),
            attestation: f.digest,
            signed: f.envelope !== undefined && key !== undefined,
            diff,
            source: attested.source,
        };
        const size = (d: RecordDiff) => d.added.length + d.removed.length + d.changed.length + d.fields.length;
        if (best === undefined || size(diff) < size(best.diff as RecordDiff)) best = v;
        if (v.same) break;
    }
    return best as ImageVerdict;
}

function formatVerdicts(vs: ImageVerdict[]): string {
    const lines: string[] = [];
    for (const v of vs) {
        const src =
            v.source === undefined ? "" : "commit" in v.source ? `, built from commit ${v.source.commit.slice(0, 12)}` : ", built from a dirty work tree";
        if (v.problem !== undefined) lines.push(`${v.label}: NOT VERIFIED ${v.ref}: ${v.problem}`);
        else if (v.same) lines.push(`${v.label}: verified ${v.ref} (attestation ${v.attestation}${v.signed ? ", signature ok" : ""}${src})`);
        else {
            lines.push(`${v.label}: DIFFERS ${v.ref} (attestation ${v.attestation}${src}):`);
            lines.push(...formatDiff(v.diff as RecordDiff));
        }
    }
    return lines.join("\n");
}
