"""Everything Qt: the window, its panels and dialogs, and the item models fed by engine events.

Nothing outside this package imports Qt; nothing in it holds a business rule.
"""
