"""Steering a running camera: the control page and ``livebokeh ctl``.

A live run serves a small page on the loopback interface (:mod:`livebokeh.control.server`): a
preview of what the virtual camera sends, the settings that change live, a background picker,
the run's state, and "keep these as my defaults". ``livebokeh ctl`` speaks the same JSON API.
Each run leaves a file (mode 0600) in the user's runtime directory with its address and its
secret (:mod:`livebokeh.control.runtime`): every request must carry that secret, and its Host
and Origin must be the page's own.
"""
