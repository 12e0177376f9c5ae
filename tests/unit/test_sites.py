from pathlib import Path

import pytest

from qlrf_pipelines.settings import BUNDLED_SITES_FILE
from qlrf_pipelines.sites import SitesFileError, load_sites


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    return path


def test_bundled_sites_cover_every_provider():
    sites = load_sites(BUNDLED_SITES_FILE)
    assert len(sites.sites) >= 6
    assert {s.provider for s in sites.sites} == {"aws", "azure", "gcp", "vsphere", "kubernetes"}
    aws = sites.site("aws-prod-use1")
    assert (aws.location, aws.environment, aws.account) == ("us-east-1", "production", "111122223333")
    assert sites.sample_path(aws) == BUNDLED_SITES_FILE.parent / "aws" / "aws-prod-use1.json"


def test_error_names_file_site_and_field(tmp_path):
    path = write(
        tmp_path,
        """
sites:
  - id: good-site
    provider: aws
    name: ok
    location: us-east-1
    environment: production
  - id: broken-site
    provider: openstack
    name: bad
    location: x
    environment: production
""",
    )
    with pytest.raises(SitesFileError) as err:
        load_sites(path)
    message = str(err.value)
    assert str(path) in message
    assert "site 'broken-site'" in message
    assert "field provider" in message


def test_missing_field_is_reported(tmp_path):
    path = write(tmp_path, "sites:\n  - id: s1\n    provider: gcp\n    name: n\n    location: europe-west1\n")
    with pytest.raises(SitesFileError, match=r"site 's1' \(entry 1\), field environment: Field required"):
        load_sites(path)


def test_literal_secret_is_refused(tmp_path):
    path = write(
        tmp_path,
        """
sites:
  - id: az1
    provider: azure
    name: n
    location: westeurope
    environment: production
    credentials:
      client_secret_env: "s3cr3t-value!"
""",
    )
    with pytest.raises(SitesFileError, match="must name an environment variable"):
        load_sites(path)


def test_duplicate_ids_and_bad_yaml(tmp_path):
    dup = write(
        tmp_path,
        "sites:\n"
        + "".join(
            f"  - {{id: same, provider: aws, name: n{i}, location: r, environment: production}}\n" for i in range(2)
        ),
    )
    with pytest.raises(SitesFileError, match="site 'same', field id: duplicate"):
        load_sites(dup)
    bad = write(tmp_path, "sites: [unclosed\n")
    with pytest.raises(SitesFileError, match="not valid YAML"):
        load_sites(bad)


def test_public_dict_has_no_credentials():
    site = load_sites(BUNDLED_SITES_FILE).sites[0]
    assert "credentials" not in site.public_dict()
