"""The notebooks as a whole.

``notebooks``: execute the series headless with time and memory recorded.
``results``: figures each notebook records, gathered for the wrap-up and
checked against its claims. ``site``: the rendered index and the slides.
"""
