"""Store-independent operations, written once over the ``Store`` contract.

Transfer (migrate, export, import), retention (prune plans), sizes, budgets, verify, doctor and the
integrity scan. A driver offers a faster way of its own as a capability (``Store.server_prune``);
these modules ask for it, never for a store's kind.
"""
