"""``[[destinations]]``: the PACS that receive our SRs, one model per ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from radassist.config.common import AETitle, Section, SrClassName, validate_ae_title


class DicomDestination(Section):
    """A PACS (or any Storage SCP) that receives our SRs by C-STORE."""

    kind: Literal["dicom"] = "dicom"
    """How SRs reach it: ``dicom`` (C-STORE)."""
    name: str = Field(min_length=1, max_length=64)
    """A short name shown on the worklist."""
    ae_title: AETitle
    """The destination's AE title (the called AE)."""
    host: str
    """Host name or address of the destination."""
    port: int = Field(ge=1, le=65535)
    """Its DICOM port."""
    calling_ae_title: AETitle | None = None
    """The calling AE we present; defaults to ``[dicom] ae_title``."""
    sr_class: SrClassName = "enhanced"
    """SR SOP class sent here: ``enhanced`` (default), ``comprehensive``, or ``basic`` (Basic Text SR, old PACS)."""
    tls: bool = False
    """Associate over TLS (DICOM TLS, PS3.15 B.1); the peer's certificate is checked against ``tls_ca_file``."""
    tls_ca_file: str = ""
    """PEM file of the CA(s) that sign the PACS's certificate; empty: the system's trust store."""
    tls_cert_file: str = ""
    """PEM client certificate we present, when the PACS requires one; empty: none."""
    tls_key_file: str = ""
    """PEM private key of ``tls_cert_file``; empty: the key is in the certificate file."""
    tls_check_hostname: bool = True
    """Check that the PACS's certificate names ``host``."""

    _check_ae = field_validator("ae_title")(validate_ae_title)


class OrthancDestination(Section):
    """An Orthanc server that receives our SRs through its REST API (``POST /instances``)."""

    kind: Literal["orthanc"]
    """How SRs reach it: ``orthanc`` (Orthanc REST, through Orthanc's ``orthanc-api-client``)."""
    name: str = Field(min_length=1, max_length=64)
    """A short name shown on the worklist."""
    url: str = Field(min_length=1)
    """Orthanc's base URL, e.g. ``http://orthanc:8042``."""
    username: str = ""
    """HTTP basic-auth user; empty: no authentication."""
    password: SecretStr = SecretStr("")
    """HTTP basic-auth password."""
    timeout_seconds: float = Field(30.0, gt=0)
    """Timeout of one HTTP request."""
    sr_class: SrClassName = "enhanced"
    """SR SOP class sent here: ``enhanced`` (default), ``comprehensive`` or ``basic``."""


class DicomwebDestination(Section):
    """A DICOMweb server that receives our SRs by STOW-RS (``POST {url}/studies``)."""

    kind: Literal["dicomweb"]
    """How SRs reach it: ``dicomweb`` (STOW-RS, multipart/related; type=application/dicom)."""
    name: str = Field(min_length=1, max_length=64)
    """A short name shown on the worklist."""
    url: str = Field(min_length=1)
    """The DICOMweb service root, e.g. ``https://pacs.example.org/dicom-web``."""
    username: str = ""
    """HTTP basic-auth user; empty: no basic authentication."""
    password: SecretStr = SecretStr("")
    """HTTP basic-auth password."""
    bearer_token: SecretStr = SecretStr("")
    """An OAuth bearer token sent as ``Authorization: Bearer``; empty: none."""
    tls_ca_file: str = ""
    """PEM file of the CA(s) that sign the server's certificate; empty: the system's trust store."""
    timeout_seconds: float = Field(30.0, gt=0)
    """Timeout of one HTTP request."""
    sr_class: SrClassName = "enhanced"
    """SR SOP class sent here: ``enhanced`` (default), ``comprehensive`` or ``basic``."""


Destination = Annotated[DicomDestination | OrthancDestination | DicomwebDestination, Field(discriminator="kind")]


