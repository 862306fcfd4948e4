"""Operations on a user's files above io: converting pick files, exporting a viewer's picks.

``convert``: pick files of any format to another (the ``deepetpicker convert`` command and the
GUI's conversion), behind an output guard. ``picks_files``: one tomogram's picks read from any
pick file, and written in another program's format (the viewer's Open and Save As).
"""
