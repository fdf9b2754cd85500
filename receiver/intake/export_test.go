package intake

import "time"

// BindForBenchmark binds the sockets without starting their readers, so
// that a benchmark can fill a socket before reading it.
func (in *Intake) BindForBenchmark() error {
	_, err := in.bind(nil)
	return err
}

// ReadForBenchmark reads and handles datagrams on the first socket, as its
// reader does, until n have been read or timeout has passed.
func (in *Intake) ReadForBenchmark(n int, timeout time.Duration) (int, error) {
	s := in.sockets[0]
	if err := s.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	got := 0
	for got < n {
		k, err := in.readBatch(s)
		got += k
		if err != nil {
			return got, err
		}
	}
	return got, nil
}
