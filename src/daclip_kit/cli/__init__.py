"""The ``daclip-kit`` command line. Verbs are registered through the ``daclip_kit_register_commands``
hook, built-ins included; each verb module imports torch only inside its ``run``."""
