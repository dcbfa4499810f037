/**
 * Pure image mutation (go-containerregistry's `mutate`): a manifest with one more layer and a new
 * config, and an index whose platform manifests are replaced. No I/O: bytes and descriptors in,
 * bytes and descriptors out; the caller reads the base and pushes the result.
 */
import { sha256 } from "../hashing/digest";
import {
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    type Descriptor,
    type ImageIndex,
    type ImageManifest,
} from "./mediatypes";

/** A manifest or index as it is put: its bytes, their digest, and its media type. */
export interface ManifestBlob {
    digest: string;
    bytes: Buffer;
    mediaType: string;
}

/** The bytes a manifest, index or config is stored as (its digest is over exactly these). */
export function serialize(x: unknown): Buffer {
    return Buffer.from(JSON.stringify(x));
}

/**
 * `base` with `layer` appended and its config replaced by `config` (the serialized config bytes'
 * digest and size). Docker media types stay Docker, OCI stays OCI; an OCI manifest gets the base
 * image annotations (org.opencontainers.image.base.digest / .name).
 */
export function appendLayer(
    base: ImageManifest,
    baseMediaType: string,
    config: { digest: string; size: number },
    layer: { digest: string; size: number },
    baseImage: { digest: string; name: string },
): ManifestBlob {
    const docker = baseMediaType === DOCKER_MANIFEST;
    const manifest: ImageManifest = {
        ...base,
        mediaType: base.mediaType ?? (docker ? DOCKER_MANIFEST : OCI_MANIFEST),
        config: { mediaType: docker ? DOCKER_CONFIG : (base.config.mediaType ?? OCI_CONFIG), digest: config.digest, size: config.size },
        layers: [...base.layers, { mediaType: docker ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP, digest: layer.digest, size: layer.size }],
    };
    if (!docker) {
        // The OCI base-image annotations name what this image was built on.
        manifest.annotations = {
            ...(base.annotations ?? {}),
            "org.opencontainers.image.base.digest": baseImage.digest,
            "org.opencontainers.image.base.name": baseImage.name,
        };
    }
    const bytes = serialize(manifest);
    return { digest: sha256(bytes), bytes, mediaType: manifest.mediaType as string };
}

/** `index` with the platform manifests `entries` (their descriptors, in order) replaced by `children`. */
export function replaceManifests(index: ImageIndex, indexMediaType: string, entries: readonly Descriptor[], children: readonly ManifestBlob[]): ManifestBlob {
    const manifests = entries.map((d, i) => ({ ...d, mediaType: children[i].mediaType, digest: children[i].digest, size: children[i].bytes.length }));
    const out: ImageIndex = {
        ...index,
        mediaType: index.mediaType ?? (indexMediaType === DOCKER_MANIFEST_LIST ? DOCKER_MANIFEST_LIST : indexMediaType),
        manifests,
    };
    const bytes = serialize(out);
    return { digest: sha256(bytes), bytes, mediaType: out.mediaType as string };
}
