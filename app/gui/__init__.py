"""Qt user interface of digit-distill: the main window (:mod:`app.gui.shell`) and its tabs."""
