"""Image references read the way container runtimes read them (Docker's defaults), for the kubelet
and the simulated containerd alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageRef:
    registry: str  # "docker.io" when the first segment is not a host
    repository: str  # "library/" prefixed for Docker Hub's official images
    tag: str  # "" when the reference names none
    digest: str  # "" when the reference names none

    @property
    def reference(self) -> str:
        """What a pull asks the registry for: the digest, else the tag, else ``latest``."""
        return self.digest or self.tag or "latest"


def parse_image(image: str) -> ImageRef:
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", name
    repository, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    if registry == "docker.io" and "/" not in repository:
        repository = f"library/{repository}"
    return ImageRef(registry, repository, tag, digest)
