/**
 * `thinlayer ensure base|app …`: reuse repo:tag when the registry has it, else build and push it.
 * With --json, exactly one JSON object goes to stdout; every log line goes to stderr.
 */
import { parseArgs } from "node:util";
import { BUILDER_CHOICES, BUILDER_CHOICES_TEXT, type BuilderChoice } from "../lib/rules";
import { checkKeepTag, ensureImage, type EnsureOptions, type EnsureResult } from "../lib/build/ensure";
import { inputError } from "../lib/errors";
import { loadPrivateKey } from "../lib/provenance/dsse";
import { PLATFORM } from "../lib/rules";

const USAGE = `usage:
  thinlayer ensure base --context <dir> --dockerfile <file> --repository <host[:port]/repo>
        [--platform linux/amd64] [--build-arg K=V ...] --expect-tag deps-<12hex>
        [--builder auto|buildx|docker|podman|buildah] [--keep-tag <tag>] [--signing-key <pem>] [--json]
  thinlayer ensure app  --context <dir> --dockerfile <file> --repository <host[:port]/repo>
        [--platform linux/amd64] [--build-arg K=V ...] --base-ref <host/repo@sha256:…>
        --base-hash <64hex> --expect-tag app-<12hex> [--builder …] [--keep-tag <tag>] [--verify] [--json]

Checks the registry first: an existing tag is reused (its digest printed, nothing built).
A copy-only app Dockerfile is built with no daemon (one reproducible layer on the base).
--keep-tag <tag>: once the image exists, also point repo:<tag> at the same digest (e.g.
  prod-app-0123456789ab, so a per-stack lifecycle rule keeps it); an existing <tag> naming another
  digest is an error, never overwritten.
Provenance: an in-toto statement of the inputs is attached to the image (an OCI referrer);
  --signing-key <pem> (or $THINLAYER_SIGNING_KEY, a path) signs it (DSSE, Ed25519 or ECDSA P-256).
  A failed attachment is a warning, never a failed ensure. Check with \`thinlayer verify\`.
--verify (app): when the tag exists, also compute the reproducible rebuild and report a differing digest.
Credentials: ECR token (for <acct>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] and
<acct>.dkr-ecr[-fips].<region>.on.aws), else $DOCKER_CONFIG/config.json or
~/.docker/config.json "auths", else anonymous.`;

/** Parses the argv after `ensure` into options (input errors name the flag). */
export function parseEnsureArgv(argv: string[]): { opts: EnsureOptions; verify: boolean; signingKey?: string } | "help" {
    const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: {
            context: { type: "string" },
            dockerfile: { type: "string" },
            repository: { type: "string" },
            platform: { type: "string" },
            "build-arg": { type: "string", multiple: true },
            "expect-tag": { type: "string" },
            "base-ref": { type: "string" },
            "base-hash": { type: "string" },
            builder: { type: "string" },
            "keep-tag": { type: "string", multiple: true },
            json: { type: "boolean" },
            verify: { type: "boolean" },
            "signing-key": { type: "string" },
            help: { type: "boolean", short: "h" },
        },
    });
    if (values.help) return "help";
    const image = positionals[0];
    if (image !== "base" && image !== "app") {
        throw inputError({
            input: "ensure <image>",
            value: JSON.stringify(image ?? ""),
            allowed: "base or app",
            fix: "run `thinlayer ensure base …` or `thinlayer ensure app …`",
        });
    }
    if (positionals.length > 1)
        throw inputError({
            input: "ensure arguments",
            value: JSON.stringify(positionals.slice(1).join(" ")),
            allowed: "only the image (base|app) and --flags",
            fix: "remove the extra words",
        });
    const need = (name: "context" | "dockerfile" | "repository" | "expect-tag"): string => {
        const v = values[name];
        if (v === undefined || v === "")
            throw inputError({ input: `--${name}`, value: "(missing)", allowed: "a value", fix: `pass --${name} (see thinlayer ensure --help)` });
        return v;
    };
    const buildArgs: Record<string, string> = {};
    for (const kv of values["build-arg"] ?? []) {
        const i = kv.indexOf("=");
        if (i <= 0) throw inputError({ input: "--build-arg", value: JSON.stringify(kv), allowed: "NAME=VALUE", fix: "write the build arg as NAME=VALUE" });
        buildArgs[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const builder = values.builder ?? "auto";
    if (!(BUILDER_CHOICES as readonly string[]).includes(builder)) {
        throw inputError({ input: "--builder", value: JSON.stringify(builder), allowed: BUILDER_CHOICES_TEXT, fix: "pick one of those" });
    }
    const keepTags = values["keep-tag"] ?? [];
    if (keepTags.length > 1)
        throw inputError({ input: "--keep-tag", value: JSON.stringify(keepTags.join(" ")), allowed: "at most one --keep-tag", fix: "pass --keep-tag once" });
    const keepTag = keepTags[0];
    if (keepTag !== undefined) checkKeepTag(keepTag);
    const platform = values.platform ?? "linux/amd64";
    if (!PLATFORM.test(platform)) {
        throw inputError({ input: "--platform", value: JSON.stringify(platform), allowed: PLATFORM.allowed, fix: "pass one platform such as linux/amd64" });
    }
    return {
        opts: {
            image,
            context: need("context"),
            dockerfile: need("dockerfile"),
            repository: need("repository"),
            platform,
            buildArgs,
            expectTag: need("expect-tag"),
            baseRef: values["base-ref"],
            baseHash: values["base-hash"],
            builder: builder as BuilderChoice,
            json: values.json ?? false,
            ...(keepTag !== undefined ? { keepTag } : {}),
        },
        verify: values.verify ?? false,
        ...(values["signing-key"] !== undefined ? { signingKey: values["signing-key"] } : {}),
    };
}

/** Human-readable summary of one result. */
function formatResult(r: EnsureResult): string {
    const lines = [
        `${r.action === "reused" ? "reused" : "built"} ${r.repository}:${r.tag}`,
        `  ref       ${r.ref}`,
        `  digest    ${r.digest}`,
        `  how       ${r.how}`,
        `  uploaded  ${r.bytesUploaded} B   downloaded ${r.bytesDownloaded} B   in ${r.seconds.toFixed(2)} s`,
    ];
    if (r.keepTag) lines.push(`  keep tag  ${r.keepTag.tag} (${r.keepTag.action})`);
    if (r.attestation)
        lines.push(`  provenance ${r.attestation.digest} (${r.attestation.action}, ${r.attestation.via}${r.attestation.signed ? ", signed" : ""})`);
    if (r.ourDigest) lines.push(`  rebuild   ${r.ourDigest} (differs; existing tag kept)`);
    for (const w of r.warnings ?? []) lines.push(`  warning   ${w}`);
    return lines.join("\n");
}

export async function run(argv: string[]): Promise<number> {
    let parsed: ReturnType<typeof parseEnsureArgv>;
    try {
        parsed = parseEnsureArgv(argv);
    } catch (e) {
        // An unknown flag or a flag without its value is a usage error, as in plan and rollback.
        if (!String((e as NodeJS.ErrnoException).code).startsWith("ERR_PARSE_ARGS_")) throw e;
        process.stderr.write(`thinlayer ensure: ${(e as Error).message}\n\n${USAGE}\n`);
        return 2;
    }
    if (parsed === "help") {
        process.stdout.write(USAGE + "\n");
        return 0;
    }
    const log = (line: string) => process.stderr.write(`thinlayer ensure: ${line}\n`);
    // Loaded before anything is built: a bad key is an input error, not a warning after the push.
    const keyFile = parsed.signingKey ?? (process.env.THINLAYER_SIGNING_KEY || undefined);
    const signingKey = keyFile !== undefined ? loadPrivateKey(keyFile, parsed.signingKey !== undefined ? "--signing-key" : "THINLAYER_SIGNING_KEY") : undefined;
    const r = await ensureImage(parsed.opts, { log, verify: parsed.verify, signingKey });
    for (const w of r.warnings ?? []) log(`warning: ${w}`);
    if (parsed.opts.json) process.stdout.write(JSON.stringify(r) + "\n");
    else process.stdout.write(formatResult(r) + "\n");
    return 0;
}
