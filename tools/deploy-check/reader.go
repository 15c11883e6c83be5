package main

import (
	"bufio"
	"io"
)

func bufioReader(in io.Reader) *bufio.Reader { return bufio.NewReaderSize(in, 1<<20) }
