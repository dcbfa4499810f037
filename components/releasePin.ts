/**
 * The rollback pin (`thinlayer:releaseImage`): deploy an earlier app image instead of building.
 *
 * A pin is a digest ref (`host/repo@sha256:…`) or a tag of the app repository. Either way the
 * program asks the registry, in preview too, and deploys `repo@<digest>`; a pinned image the
 * lifecycle has expired fails the preview with a clear error, before anything changes.
 *
 * Which lookup, and why:
 * - ECR: `aws.ecr.getImage` (DescribeImages), with the ambient AWS credentials the AWS provider
 *   already has. No registry credential is created, passed or stored.
 * - any other registry (`thinlayer:registry`): a HEAD of the manifest over the Distribution API with
 *   thinlayer's own registry client (lib/oci), the same lookup `thinlayer ensure` and the
 *   preview's tag check make, with the same credentials (the ambient docker config). No provider
 *   plugin is needed and no credential is an input, so none reaches the state. (It was
 *   `@pulumi/docker`'s getRegistryImage until the real engine ran the program: that invoke needs
 *   the docker provider plugin on every machine that previews a pin, and its registry auth would
 *   have been provider config, stored in state.)
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { inputError } from "../lib/errors";
import { RegistryClient } from "../lib/oci/client";
import { parseEcrHost, parseImageRef } from "../lib/oci/reference";
import { DIGEST, DIGEST_REF, TAG } from "../lib/rules";

export type PinKind = { kind: "digest"; repository: string; digest: string } | { kind: "tag"; tag: string };

/** Classifies a pin (pure); throws the config error for anything else. */
export function classifyPin(pin: string): PinKind {
    const m = DIGEST_REF.exec(pin);
    if (m) return { kind: "digest", repository: m[1], digest: m[2] };
    if (TAG.test(pin)) return { kind: "tag", tag: pin };
    throw pinError(
        pin,
        "repo@sha256:<64 hex>, or a tag of appRepository such as app-0123456789ab",
        "use `thinlayer rollback` to write a valid pin, or `thinlayer rollback --clear`",
    );
}

/** The `repo:tag` or `repo@digest` a pin is looked up as (pure). */
function pinLookupName(pin: PinKind, repositoryUrl: string): string {
    return pin.kind === "digest" ? `${pin.repository}@${pin.digest}` : `${repositoryUrl}:${pin.tag}`;
}

/** The ECR lookup of a pin (pure), or undefined when the repository is not in ECR. */
export function ecrImageQuery(pin: PinKind, repositoryUrl: string): aws.ecr.GetImageArgs | undefined {
    const repository = pin.kind === "digest" ? pin.repository : repositoryUrl;
    const slash = repository.indexOf("/");
    const host = slash < 0 ? "" : repository.slice(0, slash);
    const ecr = parseEcrHost(host);
    if (ecr === undefined) return undefined;
    const base = { registryId: ecr.registryId, repositoryName: repository.slice(slash + 1) };
    return pin.kind === "digest" ? { ...base, imageDigest: pin.digest } : { ...base, imageTag: pin.tag };
}

/**
 * Resolves a pin to `repo@sha256:…` through the registry. Fails (preview included) when the image is
 * gone, or when a digest pin's digest is not what the registry serves.
 */
export function resolveReleasePin(pin: string, repositoryUrl: pulumi.Input<string>, opts: pulumi.InvokeOptions = {}): pulumi.Output<string> {
    const kind = classifyPin(pin);
    return pulumi.output(repositoryUrl).apply(async (repo) => {
        const name = pinLookupName(kind, repo);
        const ecr = ecrImageQuery(kind, repo);
        let digest: string;
        try {
            digest = ecr !== undefined ? (await aws.ecr.getImage(ecr, opts)).imageDigest : await registryDigest(name);
        } catch (e) {
            const why = (e instanceof Error ? e.message : String(e))
                .split("\n")
                .map((l) => l.trim())
                .filter((l) => l !== "")
                .join(" ")
                .slice(0, 300);
            throw pinError(
                pin,
                `an image present in the registry; looking up ${name} failed: ${why}`,
                "pin a release still inside the lifecycle window (`thinlayer rollback --steps N`), or build from source (`thinlayer rollback --clear`)",
            );
        }
        if (!DIGEST.test(digest)) {
            throw pinError(
                pin,
                `the digest the registry serves for ${name} (it reports ${JSON.stringify(digest)})`,
                "check the registry; pin a release by digest with `thinlayer rollback --image <repo@sha256:…>`",
            );
        }
        if (kind.kind === "digest" && digest !== kind.digest) {
            // Not in the history by definition (the history holds the pinned digest): --image, not --to.
            throw pinError(
                pin,
                `the digest the registry serves for ${name} (it reports ${JSON.stringify(digest)})`,
                `re-pin what the registry serves: thinlayer rollback --stack <stack> --image ${kind.repository}@${digest}`,
            );
        }
        return `${kind.kind === "digest" ? kind.repository : repo}@${digest}`;
    });
}

/** The digest a registry serves for `host/repo:tag` or `host/repo@digest`; throws when it has none. */
async function registryDigest(name: string): Promise<string> {
    const ref = parseImageRef(name, "thinlayer:releaseImage");
    const info = await new RegistryClient(ref.host, { timeoutMs: 15_000, attempts: 2 }).headManifest(ref.repository, ref.digest ?? ref.tag ?? "latest");
    if (info === undefined) throw new Error(`${name}: the registry answers 404 (no such manifest)`);
    return info.digest;
}

function pinError(pin: string, allowed: string, fix: string): pulumi.RunError {
    return new pulumi.RunError(inputError({ input: "thinlayer:releaseImage", value: JSON.stringify(pin), allowed, fix }).message);
}
