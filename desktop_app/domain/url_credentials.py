"""A URL's user name and password are never shown: an OpenAI-compatible base URL
may be written ``https://user:password@host/v1``, and that text reaches settings
problems, ``doctor``, health and skip reasons, error messages and log lines.

``hide_url_credentials`` is the one rule, used by the log filter, the providers'
message scrubbers and the settings' rendering of a bad value. It fails closed:
everything between ``scheme://`` and the last ``@`` of the same word is hidden,
so a password holding a raw ``@`` or ``/`` does not leak half of itself (the
host may then be hidden too, which is the safe way to be wrong).
"""

from __future__ import annotations

import re

HIDDEN = "[redacted]"

# scheme://  then anything up to the last "@" before a space, a quote or an angle bracket
_USERINFO = re.compile(r"""([A-Za-z][A-Za-z0-9+.\-]*://)[^\s'"<>`]*@""")


def hide_url_credentials(text: str) -> str:
    """``text`` with the user-info part of every URL in it replaced by ``[redacted]``
    (``https://[redacted]@host/v1``); text without such a URL comes back unchanged."""
    return _USERINFO.sub(lambda match: f"{match.group(1)}{HIDDEN}@", text)
