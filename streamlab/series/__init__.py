"""The notebooks as a whole.

``notebooks``: execute the series headless with time and memory recorded.
``results``: figures each notebook records, gathered for the wrap-up.
``wrap_up``: the wrap-up's claims and headlines, checked against those
figures. ``book``: the executed notebooks as a book
(Sphinx). ``slides``: the reveal.js decks.
"""
