"""A run's report: figures (figures.py) and one self-contained HTML page (page.py), written by build.py.

    python -m competition.report [--run RUN | --name NAME] [--data_dir DIR]
"""
