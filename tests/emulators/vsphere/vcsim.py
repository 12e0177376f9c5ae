"""govmomi's vCenter simulator for the live vSphere tests: build (cached), start, seed, stop.

`build_vcsim.sh` compiles main.go once per content hash; `Vcsim.start` runs the binary on a free
127.0.0.1 port and waits for the URL line; `seed` turns the generated inventory into something
QL-RF cares about (templates with qlrf.* custom attributes, a VM cloned from one, VMs powered
off and suspended) through the same SOAP API a real vCenter has; ENCRYPTED_VM is given a VM
Encryption key id when the simulator starts (main.go), since vcsim cannot encrypt a VM.
"""

from __future__ import annotations

import os
import secrets
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build_vcsim.sh"
USERNAME = "qlrf-reader@vsphere.local"

# What seed() makes of the generated VPX inventory (VM names DC0_C<n>_RP0_VM<i>, DC0_H0_VM<i>).
TEMPLATES = {
    # template name: (source VM, guestId, custom attributes)
    "tpl-ubuntu-22-04-base-1-3-0": (
        "DC0_C0_RP0_VM0",
        "ubuntu64Guest",
        {"qlrf.family": "ubuntu-22.04-base", "qlrf.version": "1.3.0", "qlrf.status": "production"},
    ),
    "tpl-ubuntu-22-04-base-1-2-0": (
        "DC0_C0_RP0_VM1",
        "ubuntu64Guest",
        {"qlrf.family": "ubuntu-22.04-base", "qlrf.version": "1.2.0", "qlrf.status": "deprecated"},
    ),
    "tpl-windows-2022-base-2026-10": (
        "DC0_C1_RP0_VM0",
        "windows9Server64Guest",
        {"qlrf.family": "windows-2022-base", "qlrf.version": "2026.10", "qlrf.status": "testing"},
    ),
    "tpl-scratch": ("DC0_H0_VM0", "otherGuest", {}),
}
APP_VM = ("DC0_C0_RP0_VM2", "app-01")  # renamed, reconfigured, cloned from the 1.3.0 template
APP_ATTRIBUTES = {"qlrf.source-template": "tpl-ubuntu-22-04-base-1-3-0", "owner": "team-payments"}
POWERED_OFF_VM = "DC0_C1_RP0_VM1"
ENCRYPTED_VM = "DC0_C1_RP0_VM3"  # carries a VM Encryption key id (main.go -encrypted-vms)
KEY_PROVIDER = "qlrf-kms"
SUSPENDED_VM = "DC0_C1_RP0_VM2"
CUSTOM_FIELDS = ["qlrf.family", "qlrf.version", "qlrf.status", "qlrf.source-template", "owner"]


def build() -> Path:
    """The simulator binary (compiled on first use, cached by content hash)."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"build_vcsim.sh failed ({result.returncode}):\n{result.stderr[-4000:]}")
    binary = Path(result.stdout.strip().splitlines()[-1])
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"build_vcsim.sh printed {binary}, which is not an executable")
    return binary


@dataclass
class Vcsim:
    """One running simulator process."""

    process: subprocess.Popen
    url: str  # e.g. http://127.0.0.1:41234/sdk
    username: str
    password: str
    counts: dict = field(default_factory=dict)
    seeded: dict = field(default_factory=dict)  # what seed() made

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname

    @property
    def port(self) -> int:
        return urlsplit(self.url).port

    @classmethod
    def start(
        cls,
        binary: Path,
        *,
        tls: bool = False,
        cert_out: Path | None = None,
        method_delay: dict[str, int] | None = None,
        encrypted_vms: tuple[str, ...] = (),
        timeout_s: float = 30,
        **counts: int,
    ) -> "Vcsim":
        """Run the simulator with model counts (dc, cluster, host, standalone_host, vm, ds); with
        tls, HTTPS on a fresh self-signed certificate (written to cert_out when given);
        method_delay answers the named SOAP methods that many milliseconds late; encrypted_vms
        carry a VM Encryption key id."""
        password = "pw-" + secrets.token_urlsafe(18)
        args = [str(binary), "-username", USERNAME]
        if encrypted_vms:
            args += ["-encrypted-vms", ",".join(encrypted_vms)]
        for name, value in counts.items():
            args += [f"-{name.replace('_', '-')}", str(value)]
        if method_delay:
            args += ["-method-delay", ",".join(f"{name}={ms}" for name, ms in method_delay.items())]
        if tls:
            args.append("-tls")
            if cert_out:
                args += ["-cert-out", str(cert_out)]
        log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a full pipe would block vcsim
        process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,  # closing it (or this process dying) stops the simulator
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "VCSIM_PASSWORD": password},
            text=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.2)
            if ready:
                line = process.stdout.readline()
                if line.startswith("VCSIM_URL="):
                    log.close()
                    return cls(process, line.split("=", 1)[1].strip(), USERNAME, password, counts)
                if not line and process.poll() is not None:
                    break
        process.kill()
        process.wait(timeout=5)
        log.seek(0)
        raise RuntimeError(f"vcsim did not start (exit {process.returncode}): {log.read()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()

    def connect(self):
        """A pyvmomi ServiceInstance for seeding (not the code under test)."""
        import ssl

        from pyVim.connect import Connect

        parts = urlsplit(self.url)
        port = -parts.port if parts.scheme == "http" else parts.port
        return Connect(
            host=parts.hostname,
            port=port,
            user=self.username,
            pwd=self.password,
            path=parts.path,
            version="vim.version.version11",  # what the simulator (vSphere 6.5) speaks
            sslContext=ssl._create_unverified_context(),
        )

    def seed(self) -> dict:
        """Templates with golden-image attributes, a VM cloned from one, VMs in other power
        states; returns what was made (names -> instance UUIDs etc.) for the assertions."""
        from pyVim.connect import Disconnect
        from pyVim.task import WaitForTask
        from pyVmomi import vim

        si = self.connect()
        try:
            content = si.RetrieveContent()
            view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
            vms = {vm.name: vm for vm in view.view}
            view.DestroyView()
            fields = content.customFieldsManager
            keys = {name: fields.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key for name in CUSTOM_FIELDS}

            for template, (source, guest_id, attributes) in TEMPLATES.items():
                vm = vms[source]
                WaitForTask(vm.PowerOffVM_Task())
                WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(guestId=guest_id)))
                WaitForTask(vm.Rename_Task(newName=template))
                vm.MarkAsTemplate()
                for name, value in attributes.items():
                    fields.SetField(entity=vm, key=keys[name], value=value)

            source, name = APP_VM
            app = vms[source]
            spec = vim.vm.ConfigSpec(guestId="ubuntu64Guest", numCPUs=4, memoryMB=8192, annotation="payments web tier")
            WaitForTask(app.ReconfigVM_Task(spec=spec))
            WaitForTask(app.Rename_Task(newName=name))
            for attribute, value in APP_ATTRIBUTES.items():
                fields.SetField(entity=app, key=keys[attribute], value=value)

            WaitForTask(vms[POWERED_OFF_VM].PowerOffVM_Task())
            WaitForTask(vms[SUSPENDED_VM].SuspendVM_Task())
            self.seeded = {
                "vm_count": len(vms),
                "app_uuid": app.config.instanceUuid,
                "app_host": app.runtime.host.name,
                "powered_off_uuid": vms[POWERED_OFF_VM].config.instanceUuid,
                "suspended_uuid": vms[SUSPENDED_VM].config.instanceUuid,
                "encrypted_uuid": vms[ENCRYPTED_VM].config.instanceUuid,
                "field_keys": keys,
            }
            return self.seeded
        finally:
            Disconnect(si)
