"""``cnnzoo app``: the zoo, the instruments and the runs in one local web page.

A small Starlette server (:mod:`cnnzoo.app.server`) answers JSON requests and
serves one page written in plain HTML, JavaScript and CSS from
``cnnzoo/app/static``, so nothing is fetched from another machine. The page
has four views -- Zoo, Inspect, Runs and Experiments -- each backed by a
module here that turns the library's own instruments (the layer table,
receptive fields, Grad-CAM, feature maps, SE gates, run directories,
comparisons and the survey's experiments) into plain data for the page.
"""
