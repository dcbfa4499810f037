/** The pure mutate step (lib/oci/mutate.ts): a manifest plus one layer, an index with its platform manifests replaced. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendLayer, replaceManifests } from "../../lib/oci/mutate";
import { sha256 } from "../../lib/hashing/digest";
import { DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, type ImageManifest } from "../../lib/oci/mediatypes";

const D = (c: string) => `sha256:${c.repeat(64)}`;
const base = (mediaType: string, configType: string): ImageManifest => ({
    schemaVersion: 2,
    mediaType,
    config: { mediaType: configType, digest: D("1"), size: 10 },
    layers: [{ mediaType: OCI_LAYER_GZIP, digest: D("2"), size: 20 }],
});

test("appendLayer: OCI stays OCI, gains the layer, the new config and the base-image annotations; the digest is over the bytes", () => {
    const m = appendLayer(
        base(OCI_MANIFEST, "application/vnd.oci.image.config.v1+json"),
        OCI_MANIFEST,
        { digest: D("3"), size: 30 },
        { digest: D("4"), size: 40 },
        { digest: D("5"), name: "r/base" },
    );
    const j = JSON.parse(m.bytes.toString("utf8")) as ImageManifest;
    assert.equal(m.mediaType, OCI_MANIFEST);
    assert.equal(m.digest, sha256(m.bytes));
    assert.deepEqual(j.config, { mediaType: "application/vnd.oci.image.config.v1+json", digest: D("3"), size: 30 });
    assert.deepEqual(
        j.layers.map((l) => [l.mediaType, l.digest]),
        [
            [OCI_LAYER_GZIP, D("2")],
            [OCI_LAYER_GZIP, D("4")],
        ],
    );
    assert.deepEqual(j.annotations, { "org.opencontainers.image.base.digest": D("5"), "org.opencontainers.image.base.name": "r/base" });
});

test("appendLayer: a Docker manifest gets Docker media types and no OCI annotations", () => {
    const m = appendLayer(
        base(DOCKER_MANIFEST, "application/vnd.docker.container.image.v1+json"),
        DOCKER_MANIFEST,
        { digest: D("3"), size: 30 },
        { digest: D("4"), size: 40 },
        { digest: D("5"), name: "r/base" },
    );
    const j = JSON.parse(m.bytes.toString("utf8")) as ImageManifest;
    assert.equal(m.mediaType, DOCKER_MANIFEST);
    assert.equal(j.layers[1].mediaType, DOCKER_LAYER_GZIP);
    assert.equal(j.annotations, undefined);
});

test("replaceManifests: each platform entry keeps its platform and takes the child's digest, size and media type", () => {
    const child = appendLayer(
        base(OCI_MANIFEST, "application/vnd.oci.image.config.v1+json"),
        OCI_MANIFEST,
        { digest: D("3"), size: 30 },
        { digest: D("4"), size: 40 },
        { digest: D("5"), name: "r/base" },
    );
    const entry = { mediaType: OCI_MANIFEST, digest: D("6"), size: 60, platform: { os: "linux", architecture: "amd64" } };
    const idx = replaceManifests({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [entry] }, OCI_INDEX, [entry], [child]);
    const j = JSON.parse(idx.bytes.toString("utf8")) as { manifests: Array<Record<string, unknown>> };
    assert.equal(idx.digest, sha256(idx.bytes));
    assert.deepEqual(j.manifests, [{ ...entry, digest: child.digest, size: child.bytes.length }]);
});
