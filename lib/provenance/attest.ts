/**
 * The ensure step after the image exists: compute the input record, attach it as a statement.
 *
 * A failure here never fails ensure: the image tag already exists and is correct, and a failed
 * ensure would fail `pulumi up` after the registry changed, while a rerun would reuse the tag and
 * try the attestation again anyway. So it becomes a warning in the ensure result (and on stderr),
 * and `thinlayer verify` is what reports a missing attestation as a failure.
 */
import type { KeyObject } from "node:crypto";
import * as path from "node:path";
import { RegistryClient } from "../oci/client";
import type { Descriptor } from "../oci/mediatypes";
import { parseRepository } from "../oci/reference";
import { attachStatement, type AttachResult } from "./attach";
import { computeRecord } from "./record";
import { buildStatement, type InputRecord } from "./statement";

export interface AttestArgs {
    image: "base" | "app";
    context: string;
    dockerfile: string;
    repository: string;
    platform?: string;
    buildArgs?: Record<string, string>;
    baseRef?: string;
    baseHash?: string;
}

export type AttestationSummary = Omit<AttachResult, "bytesUploaded"> & { bytesUploaded: number };

/** The input record of the image `o` describes, as the checkout gives it now (see computeRecord). */
export function recordOf(o: AttestArgs, source?: Promise<InputRecord["source"]>): Promise<InputRecord> {
    return computeRecord({
        role: o.image,
        contextDir: path.resolve(o.context),
        dockerfile: path.resolve(o.dockerfile),
        buildArgs: o.buildArgs ?? {},
        platform: o.platform ?? "linux/amd64",
        baseHash: o.baseHash,
        baseRef: o.baseRef,
        source,
    });
}

/** Attaches the statement for `digest`/`tag`; returns the summary, or a warning when it could not. */
export async function attestEnsured(
    o: AttestArgs,
    image: { digest: string; tag: string },
    rt: {
        client?: RegistryClient;
        log?: (line: string) => void;
        dockerConfig?: string;
        signingKey?: KeyObject;
        source?: Promise<InputRecord["source"]>;
        /** recordOf(o), when the caller started it once the image's files were read (so it runs during the push). */
        record?: Promise<InputRecord>;
        /** Attach while the image is pushed (attachStatement's early attachment). */
        early?: { subject: Descriptor; subjectPut: Promise<boolean> };
    },
): Promise<{ attestation?: AttestationSummary; warning?: string }> {
    const log = rt.log ?? (() => undefined);
    try {
        const { host, repository } = parseRepository(o.repository);
        const record = await (rt.record ?? recordOf(o, rt.source));
        if (record.tag !== image.tag) {
            return {
                warning: `no provenance attestation for ${host}/${repository}:${image.tag}: the input files changed while ensure ran (they now give ${record.tag}); rerun ensure to attest`,
            };
        }
        const client = rt.client ?? new RegistryClient(host, { log, dockerConfig: rt.dockerConfig });
        const r = await attachStatement(
            client,
            repository,
            image.digest,
            buildStatement(`${host}/${repository}`, image.digest, record),
            rt.signingKey,
            rt.early,
        );
        log(`provenance ${r.action === "exists" ? "already attached" : "attached"} (${r.via}${r.signed ? ", signed" : ""}): ${r.digest}`);
        return { attestation: r };
    } catch (e) {
        return {
            warning: `no provenance attestation for ${o.repository}@${image.digest}: ${(e as Error).message} (the image itself is fine; rerun ensure to retry the attestation)`,
        };
    }
}
