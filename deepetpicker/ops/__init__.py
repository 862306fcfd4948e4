"""Operations on a user's files above io: converting pick files, exporting a viewer's picks.

``convert``: pick files of any format to another (the ``deepetpicker convert`` command and the
GUI's conversion), behind an output guard.
"""
