// idle_go is the Go peer of coil_bench's BM_idle_coroutines: it parks N goroutines, each
// blocked on a channel receive after it has run, and prints how much the process's resident
// memory grew per goroutine. Run it with GOMAXPROCS=1, like the single-threaded coil scheduler.
//
//	idle_go [N]    (default 1000000)
//
// prints one line:
//
//	goroutines=N rss_per_goroutine_bytes=B pte_per_goroutine_bytes=P seconds=S
//
// B is the growth of VmRSS, P of VmPTE (page tables, which RSS does not count), both read from
// /proc/self/status before the first goroutine starts and after the last one has parked and a
// garbage collection has run; S is the time to start and park them all.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// statusBytes returns the VmRSS and VmPTE of this process in bytes.
func statusBytes() (rss, pte int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "idle_go:", err)
		os.Exit(1)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmPTE:":
			pte = kb * 1024
		}
	}
	return rss, pte
}

func main() {
	n := 1000000
	if len(os.Args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: idle_go [N]")
		os.Exit(2)
	}
	if len(os.Args) == 2 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 1 {
			fmt.Fprintln(os.Stderr, "idle_go: not a count:", os.Args[1])
			os.Exit(2)
		}
		n = v
	}

	runtime.GC()
	debug.FreeOSMemory()
	rss0, pte0 := statusBytes()

	start := time.Now()
	var parked sync.WaitGroup
	parked.Add(n)
	release := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			<-release
		}()
	}
	parked.Wait()
	// Done() runs just before the receive: let the last goroutines reach it and park.
	runtime.Gosched()
	elapsed := time.Since(start)
	runtime.GC()
	rss1, pte1 := statusBytes()

	fmt.Printf("goroutines=%d rss_per_goroutine_bytes=%.0f pte_per_goroutine_bytes=%.0f "+
		"seconds=%.3f\n", n, float64(rss1-rss0)/float64(n), float64(pte1-pte0)/float64(n),
		elapsed.Seconds())
	close(release)
}
