/** Manifest and config media types of the OCI image spec and Docker's v2 schema 2. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/** Sent on every manifest request: we read all four kinds. */
export const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(", ");

export function isIndex(mediaType: string | undefined): boolean {
    return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

export interface Descriptor {
    mediaType: string;
    digest: string;
    size: number;
    platform?: { architecture: string; os: string; variant?: string; "os.version"?: string };
    annotations?: Record<string, string>;
}

export interface ImageManifest {
    schemaVersion: 2;
    mediaType?: string;
    config: Descriptor;
    layers: Descriptor[];
    annotations?: Record<string, string>;
}

export interface ImageIndex {
    schemaVersion: 2;
    mediaType?: string;
    manifests: Descriptor[];
    annotations?: Record<string, string>;
}

/** The parts of an image config (OCI / Docker) that thinlayer reads or writes. */
export interface ImageConfig {
    architecture?: string;
    os?: string;
    variant?: string;
    created?: string;
    config?: {
        Env?: string[];
        Cmd?: string[] | null;
        Entrypoint?: string[] | null;
        WorkingDir?: string;
        User?: string;
        Labels?: Record<string, string> | null;
        ExposedPorts?: Record<string, object> | null;
        [k: string]: unknown;
    };
    rootfs: { type: "layers"; diff_ids: string[] };
    history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean; author?: string }>;
    [k: string]: unknown;
}
