//! Provisioning of emulator resources from template.yaml. PROVISION: to be written.
